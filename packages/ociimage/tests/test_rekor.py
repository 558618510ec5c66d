"""Rekor proofs checked offline: SETs and RFC 9162 inclusion proofs with checkpoints."""

from __future__ import annotations

import base64
import json

import pytest

from ociimage.errors import SignatureVerificationError
from ociimage.rekor import parse_cosign_bundle, parse_tlog_entry, verify_inclusion_proof, verify_set
from ociimage.sigstore import load_public_keys
from ociimage.testing.keyless import RekorLog, merkle_path, merkle_root

# RFC 6962 test leaves and the roots of their prefixes (certificate-transparency's vectors)
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_merkle_helper_matches_rfc6962_vectors() -> None:
    for n in range(1, len(LEAVES) + 1):
        assert merkle_root(LEAVES[:n]).hex() == ROOTS[n - 1]


@pytest.fixture(scope="module")
def rekor() -> RekorLog:
    return RekorLog()


def test_inclusion_proofs_at_every_position(rekor: RekorLog) -> None:
    keys = load_public_keys(rekor.public_pem)
    logged = rekor.log({"kind": "dsse", "apiVersion": "0.0.1", "spec": {}})
    entry = parse_tlog_entry(logged.tlog_entry())
    for size in range(1, 12):
        for position in range(size):
            proof = rekor.inclusion_proof(logged, position=position, size=size)
            verify_inclusion_proof(entry, proof, keys)
            if size > 1:
                # the same path claimed for a neighbour's position does not hold
                moved = {**proof, "logIndex": str((position + 1) % size)}
                with pytest.raises(SignatureVerificationError, match="inclusion proof"):
                    verify_inclusion_proof(entry, moved, keys)


def test_broken_inclusion_proofs_are_named(rekor: RekorLog) -> None:
    keys = load_public_keys(rekor.public_pem)
    logged = rekor.log({"kind": "dsse", "apiVersion": "0.0.1", "spec": {}})
    other = rekor.log({"kind": "dsse", "apiVersion": "0.0.1", "spec": {"x": 1}})
    entry = parse_tlog_entry(logged.tlog_entry())
    proof = rekor.inclusion_proof(logged, position=3, size=7)
    stranger = RekorLog()
    leaves = [b"filler %d" % n for n in range(7)]
    leaves[3] = base64.b64decode(logged.body)
    cases = [
        (rekor.inclusion_proof(other, position=3, size=7), "does not lead to its root"),
        ({**proof, "hashes": proof["hashes"][:-1]}, "too few hashes"),
        ({**proof, "hashes": [*proof["hashes"], proof["hashes"][0]]}, "too many hashes"),
        ({**proof, "hashes": list(reversed(proof["hashes"]))}, "does not lead to its root"),
        ({**proof, "logIndex": "9"}, "outside a tree of 7"),
        (
            {**proof, "checkpoint": {"envelope": stranger.checkpoint(7, merkle_root(leaves))}},
            "not signed by the policy's Rekor keys",
        ),
        (
            {**proof, "checkpoint": {"envelope": rekor.checkpoint(8, merkle_root(leaves))}},
            "another tree size or root hash",
        ),
        ({**proof, "checkpoint": {"envelope": "garbage"}}, "checkpoint is malformed"),
        ({k: v for k, v in proof.items() if k != "rootHash"}, "malformed"),
    ]
    assert merkle_path(3, leaves) == [base64.b64decode(h) for h in proof["hashes"]]
    for broken, reason in cases:
        with pytest.raises(SignatureVerificationError, match=reason):
            verify_inclusion_proof(entry, broken, keys)


def test_set_covers_every_field(rekor: RekorLog) -> None:
    keys = load_public_keys(rekor.public_pem)
    logged = rekor.log({"kind": "hashedrekord"}, integrated_time=1_700_000_000)
    entry = parse_cosign_bundle(logged.cosign_annotation())
    assert verify_set(entry, keys).timestamp() == 1_700_000_000
    doc = json.loads(logged.cosign_annotation())
    for field, value in [
        ("integratedTime", 1_700_000_001),
        ("logIndex", logged.log_index + 1),
        ("logID", "00" * 32),
        ("body", base64.b64encode(b"{}").decode()),
    ]:
        changed = {**doc, "Payload": {**doc["Payload"], field: value}}
        with pytest.raises(SignatureVerificationError, match="does not verify"):
            verify_set(parse_cosign_bundle(json.dumps(changed)), keys)
    with pytest.raises(SignatureVerificationError, match="malformed"):
        parse_cosign_bundle('{"Payload": {}}')
