"""Rekor transparency-log proofs checked offline: signed entry timestamps (SETs).

A SET is Rekor's signature, with its own key, over the canonical JSON of
``{"body", "integratedTime", "logID", "logIndex"}``: a promise that the entry ``body``
was logged at ``integratedTime``. Cosign stores it with a simple-signing signature in
the ``dev.sigstore.cosign/bundle`` annotation; Sigstore bundles carry it as a tlog
entry's ``inclusionPromise``. Checking the SET with the policy's Rekor keys, then that
the logged entry is this signature (same signature bytes, same key or certificate, same
payload hash), proves when the signature existed, which is the time a Fulcio
certificate must have been valid at. A bundle's ``inclusionProof`` is checked too
(RFC 9162 Merkle inclusion of the entry in a tree whose checkpoint the Rekor key
signed). Nothing here queries a Rekor server.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from ociimage.errors import SignatureVerificationError
from ociimage.sigstore import PublicKey, verify_signature

__all__ = [
    "COSIGN_BUNDLE_ANNOTATION",
    "RekorEntry",
    "check_dsse_entry",
    "check_hashedrekord_entry",
    "parse_cosign_bundle",
    "parse_tlog_entry",
    "verifier_der",
    "verify_inclusion_proof",
    "verify_set",
]

#: The simple-signing layer annotation holding the Rekor SET and the logged entry.
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


@dataclass(frozen=True, kw_only=True)
class RekorEntry:
    """A logged entry with its SET, as found next to a signature (not yet verified)."""

    body: str
    integrated_time: int
    log_index: int
    log_id: str
    signed_entry_timestamp: str

    def set_payload(self) -> bytes:
        """The canonical JSON (RFC 8785) the SET signs; ASCII strings and integers only."""
        doc = {
            "body": self.body,
            "integratedTime": self.integrated_time,
            "logID": self.log_id,
            "logIndex": self.log_index,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def entry(self) -> Mapping[str, Any]:
        """The decoded log entry (``hashedrekord``, ``dsse``...)."""
        try:
            doc = json.loads(base64.b64decode(self.body, validate=True))
        except (binascii.Error, ValueError) as err:
            raise SignatureVerificationError("the Rekor entry body is not base64 JSON") from err
        if not isinstance(doc, dict):
            raise SignatureVerificationError("the Rekor entry body is not a JSON object")
        return doc


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SignatureVerificationError(f"the Rekor {what} is not an integer")
    try:
        return int(value)
    except ValueError as err:
        raise SignatureVerificationError(f"the Rekor {what} is not an integer") from err


def parse_cosign_bundle(annotation: str) -> RekorEntry:
    """The Rekor entry in a ``dev.sigstore.cosign/bundle`` annotation."""
    try:
        doc = json.loads(annotation)
        payload = doc["Payload"]
        entry = RekorEntry(
            body=payload["body"],
            integrated_time=_int(payload["integratedTime"], "integratedTime"),
            log_index=_int(payload["logIndex"], "logIndex"),
            log_id=payload["logID"],
            signed_entry_timestamp=doc["SignedEntryTimestamp"],
        )
    except (ValueError, KeyError, TypeError) as err:
        raise SignatureVerificationError(
            f"the {COSIGN_BUNDLE_ANNOTATION} annotation is malformed ({err!r})"
        ) from err
    if not all(
        isinstance(v, str) for v in (entry.body, entry.log_id, entry.signed_entry_timestamp)
    ):
        raise SignatureVerificationError(f"the {COSIGN_BUNDLE_ANNOTATION} annotation is malformed")
    return entry


def parse_tlog_entry(doc: Any) -> RekorEntry:
    """The Rekor entry of a Sigstore bundle's ``tlogEntries`` item; it needs a SET
    (``inclusionPromise``), which is what can be checked offline."""
    if not isinstance(doc, dict):
        raise SignatureVerificationError("the bundle's tlog entry is not an object")
    promise = doc.get("inclusionPromise")
    if not isinstance(promise, dict) or not isinstance(promise.get("signedEntryTimestamp"), str):
        raise SignatureVerificationError(
            "the bundle's tlog entry has no inclusionPromise (signed entry timestamp)"
        )
    try:
        log_id = base64.b64decode(doc["logId"]["keyId"], validate=True).hex()
        body = doc["canonicalizedBody"]
        entry = RekorEntry(
            body=body if isinstance(body, str) else "",
            integrated_time=_int(doc["integratedTime"], "integratedTime"),
            log_index=_int(doc["logIndex"], "logIndex"),
            log_id=log_id,
            signed_entry_timestamp=promise["signedEntryTimestamp"],
        )
    except (KeyError, TypeError, binascii.Error) as err:
        raise SignatureVerificationError(f"the bundle's tlog entry is malformed ({err!r})") from err
    if not entry.body:
        raise SignatureVerificationError("the bundle's tlog entry has no canonicalizedBody")
    return entry


def verify_set(entry: RekorEntry, rekor_keys: Sequence[PublicKey]) -> datetime.datetime:
    """The time Rekor promises it logged ``entry``, once its SET verifies with a trusted
    Rekor key."""
    if not verify_signature(entry.set_payload(), entry.signed_entry_timestamp, list(rekor_keys)):
        raise SignatureVerificationError(
            "the Rekor signed entry timestamp does not verify with the policy's Rekor keys"
        )
    return datetime.datetime.fromtimestamp(entry.integrated_time, datetime.UTC)


def verifier_der(pem: bytes) -> bytes:
    """A canonical form of a logged verifier: a certificate's DER, or a key's SPKI DER."""
    try:
        return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except ValueError:
        pass
    try:
        key = load_pem_public_key(pem)
    except ValueError as err:
        raise SignatureVerificationError(
            "the Rekor entry's verifier is neither a PEM certificate nor a PEM public key"
        ) from err
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise SignatureVerificationError(f"the Rekor entry has no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise SignatureVerificationError(f"the Rekor entry's {what} is not base64") from err


def _kind(entry: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    if entry.get("kind") != kind or entry.get("apiVersion") != "0.0.1":
        raise SignatureVerificationError(
            f"the Rekor entry is {entry.get('kind')!r} {entry.get('apiVersion')!r}, "
            f"not {kind!r} 0.0.1"
        )
    spec = entry.get("spec")
    if not isinstance(spec, dict):
        raise SignatureVerificationError("the Rekor entry has no spec")
    return spec


def _sha256(doc: Any, what: str) -> str:
    if not isinstance(doc, dict) or doc.get("algorithm") != "sha256":
        raise SignatureVerificationError(f"the Rekor entry's {what} is not a sha256 hash")
    value = doc.get("value")
    return value.lower() if isinstance(value, str) else ""


def check_hashedrekord_entry(
    entry: RekorEntry, payload: bytes, signature_b64: str, verifier: bytes
) -> None:
    """That the logged ``hashedrekord`` is this signature of this payload by ``verifier``
    (the DER of the certificate, or the SPKI DER of the key, that verified it)."""
    try:
        spec = _kind(entry.entry(), "hashedrekord")
        logged_hash = _sha256(spec["data"]["hash"], "payload hash")
        logged_signature = _b64(spec["signature"]["content"], "signature")
        logged_verifier = _b64(spec["signature"]["publicKey"]["content"], "public key")
    except (KeyError, TypeError) as err:
        raise SignatureVerificationError(f"the Rekor entry is malformed ({err!r})") from err
    if logged_hash != hashlib.sha256(payload).hexdigest():
        raise SignatureVerificationError("the Rekor entry is for another payload")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except binascii.Error as err:
        raise SignatureVerificationError("the signature is not base64") from err
    if logged_signature != signature:
        raise SignatureVerificationError("the Rekor entry is for another signature")
    if verifier_der(logged_verifier) != verifier:
        raise SignatureVerificationError("the Rekor entry is for another key or certificate")


def check_dsse_entry(
    entry: RekorEntry, payload: bytes, signatures: Sequence[str], verifier: bytes
) -> None:
    """That the logged ``dsse`` entry is this envelope's payload, signed by ``verifier``
    with one of ``signatures`` (base64)."""
    try:
        spec = _kind(entry.entry(), "dsse")
        logged_hash = _sha256(spec["payloadHash"], "payload hash")
        logged = [
            (_b64(s["signature"], "signature"), _b64(s["verifier"], "verifier"))
            for s in spec["signatures"]
        ]
    except (KeyError, TypeError) as err:
        raise SignatureVerificationError(f"the Rekor entry is malformed ({err!r})") from err
    if logged_hash != hashlib.sha256(payload).hexdigest():
        raise SignatureVerificationError("the Rekor entry is for another payload")
    wanted: set[bytes] = set()
    for sig in signatures:
        try:
            wanted.add(base64.b64decode(sig, validate=True))
        except binascii.Error:
            continue
    if not any(sig in wanted and verifier_der(pem) == verifier for sig, pem in logged):
        raise SignatureVerificationError(
            "the Rekor entry is for another signature, key or certificate"
        )


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _merkle_root(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root an RFC 9162 (2.1.3.2) inclusion proof of ``leaf`` at ``index`` leads to."""
    if not 0 <= index < size:
        raise SignatureVerificationError(
            f"the inclusion proof's index {index} is outside a tree of {size} entries"
        )
    fn, sn, node = index, size - 1, hashlib.sha256(b"\x00" + leaf).digest()
    for sibling in path:
        if sn == 0:
            raise SignatureVerificationError("the inclusion proof has too many hashes")
        if fn & 1 or fn == sn:
            node = _node(sibling, node)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = _node(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise SignatureVerificationError("the inclusion proof has too few hashes")
    return node


def _checkpoint(envelope: str, rekor_keys: Sequence[PublicKey]) -> tuple[int, bytes]:
    """(tree size, root hash) of a signed-note checkpoint signed by a Rekor key."""
    text, sep, signatures = envelope.partition("\n\n")
    lines = text.split("\n")
    if not sep or len(lines) < 3:
        raise SignatureVerificationError("the inclusion proof's checkpoint is malformed")
    note = (text + "\n").encode()
    signed = False
    for line in signatures.splitlines():
        _, _, encoded = line.rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        # a 4-byte key hint, then the signature
        if verify_signature(note, base64.b64encode(raw[4:]).decode(), list(rekor_keys)):
            signed = True
            break
    if not signed:
        raise SignatureVerificationError(
            "the inclusion proof's checkpoint is not signed by the policy's Rekor keys"
        )
    try:
        return int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error) as err:
        raise SignatureVerificationError("the inclusion proof's checkpoint is malformed") from err


def verify_inclusion_proof(entry: RekorEntry, proof: Any, rekor_keys: Sequence[PublicKey]) -> None:
    """That ``proof`` (a bundle's ``inclusionProof``) puts ``entry`` in a log tree whose
    checkpoint a Rekor key signed."""
    try:
        index = _int(proof["logIndex"], "inclusion proof logIndex")
        size = _int(proof["treeSize"], "inclusion proof treeSize")
        root = base64.b64decode(proof["rootHash"], validate=True)
        path = [base64.b64decode(h, validate=True) for h in proof["hashes"]]
        envelope = proof["checkpoint"]["envelope"]
        leaf = base64.b64decode(entry.body, validate=True)
    except (KeyError, TypeError, binascii.Error) as err:
        raise SignatureVerificationError(f"the inclusion proof is malformed ({err!r})") from err
    if not isinstance(envelope, str):
        raise SignatureVerificationError("the inclusion proof's checkpoint is malformed")
    if _merkle_root(leaf, index, size, path) != root:
        raise SignatureVerificationError("the inclusion proof does not lead to its root hash")
    if _checkpoint(envelope, rekor_keys) != (size, root):
        raise SignatureVerificationError(
            "the inclusion proof's checkpoint is for another tree size or root hash"
        )
