"""ociimage.policy: strict policy.json parsing, scope precedence and identity rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ociimage.errors import ConfigFileError
from ociimage.policy import (
    AcceptAnything,
    Policy,
    Reject,
    SignedBy,
    SignedIdentity,
    SigstoreSigned,
    UnknownRequirement,
    load_policy,
)
from ociimage.reference import parse_reference

DIGEST = "sha256:" + "a" * 64


def _policy(docker: dict[str, object], default: object = None) -> Policy:
    doc = {
        "default": default or [{"type": "reject"}],
        "transports": {
            "docker": docker,
            "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]},
        },
    }
    return Policy.parse(json.dumps(doc))


ACCEPT = [{"type": "insecureAcceptAnything"}]


def test_scopes_most_specific_first() -> None:
    scopes = [
        "r.example.com/ns/app:1",
        f"r.example.com/ns/app@{DIGEST}",
        "r.example.com/ns/app",
        "r.example.com/ns",
        "r.example.com",
        "*.example.com",
        "*.com",
        "",
    ]
    policy = _policy({s: ACCEPT for s in scopes})
    cases = [
        ("r.example.com/ns/app:1", "r.example.com/ns/app:1"),
        (f"r.example.com/ns/app@{DIGEST}", f"r.example.com/ns/app@{DIGEST}"),
        ("r.example.com/ns/app:2", "r.example.com/ns/app"),
        ("r.example.com/ns/other", "r.example.com/ns"),
        ("r.example.com/top", "r.example.com"),
        ("s.example.com/x", "*.example.com"),
        ("a.b.other.com/x", "*.com"),
        ("localhost:5000/x", ""),
    ]
    for ref, scope in cases:
        assert policy.scope_for(parse_reference(ref)) == scope, ref
    # a repository scope is not a string prefix: r.example.com/ns2 is not under r.example.com/ns
    assert policy.scope_for(parse_reference("r.example.com/ns2/x")) == "r.example.com"
    bare = _policy({"r.example.com/ns": ACCEPT})
    assert bare.requirements_for(parse_reference("q.io/x")) == ("default", (Reject(),))
    # tagless references match their :latest scope
    assert (
        _policy({"q.io/x:latest": ACCEPT}).scope_for(parse_reference("q.io/x")) == "q.io/x:latest"
    )


def test_requirement_types(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_bytes(b"-----BEGIN PUBLIC KEY-----\n")
    policy = Policy.parse(
        json.dumps(
            {
                "default": [{"type": "insecureAcceptAnything"}],
                "transports": {
                    "docker": {
                        "a.io": [{"type": "sigstoreSigned", "keyPath": "k.pub"}],
                        "b.io": [
                            {
                                "type": "sigstoreSigned",
                                "keyData": base64.b64encode(b"pem").decode(),
                                "signedIdentity": {"type": "matchRepository"},
                            }
                        ],
                        "c.io": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "k.pub"}],
                        "d.io": [{"type": "somethingNew", "x": 1}],
                    }
                },
            }
        ),
        base=tmp_path,
    )
    a = policy.docker["a.io"][0]
    assert isinstance(a, SigstoreSigned) and a.keys == (b"-----BEGIN PUBLIC KEY-----\n",)
    assert a.signed_identity.type == "matchRepoDigestOrExact"
    b = policy.docker["b.io"][0]
    assert isinstance(b, SigstoreSigned) and b.keys == (b"pem",)
    assert b.signed_identity.type == "matchRepository"
    assert isinstance(policy.docker["c.io"][0], SignedBy)
    d = policy.docker["d.io"][0]
    assert isinstance(d, UnknownRequirement) and d.name == "somethingNew"
    assert policy.default == (AcceptAnything(),)


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ("[]", "JSON object"),
        ("{", "not valid JSON"),
        ('{"transports": {}}', "default"),
        ('{"default": []}', "non-empty list"),
        ('{"default": [{"type": "reject", "extra": 1}]}', "unknown fields"),
        ('{"default": [{"type": "reject"}], "other": 1}', "unknown fields"),
        ('{"default": [{"nope": 1}]}', "with a type"),
        ('{"default": [{"type": "sigstoreSigned"}]}', "needs keys or fulcio"),
        (
            '{"default": [{"type": "sigstoreSigned", "keyPath": "/nonexistent/k"}]}',
            "cannot read key",
        ),
        ('{"default": [{"type": "sigstoreSigned", "keyData": "!!"}]}', "base64"),
        (
            '{"default": [{"type": "sigstoreSigned", "keyData": "eA==", "keyPath": "/k"}]}',
            "only one of",
        ),
        (
            '{"default": [{"type": "sigstoreSigned", "keyData": "eA==", '
            '"signedIdentity": {"type": "guess"}}]}',
            "signedIdentity",
        ),
        (
            '{"default": [{"type": "sigstoreSigned", "keyData": "eA==", '
            '"signedIdentity": {"type": "exactReference"}}]}',
            "needs dockerReference",
        ),
        (
            '{"default": [{"type": "sigstoreSigned", "keyData": "eA==", '
            '"signedIdentity": {"type": "exactReference", "dockerReference": "q.io/x"}}]}',
            "tag or digest",
        ),
        ('{"default": [{"type": "signedBy", "keyType": "Nope", "keyData": "eA=="}]}', "keyType"),
        ('{"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}', "needs keyPath"),
        (
            '{"default": [{"type": "reject"}], '
            '"transports": {"docker": {"busybox": [{"type": "reject"}]}}}',
            "registry host",
        ),
        (
            '{"default": [{"type": "reject"}], '
            '"transports": {"docker": {"*.a.io/x": [{"type": "reject"}]}}}',
            "wildcard",
        ),
    ],
)
def test_strict_parsing(doc: str, why: str) -> None:
    with pytest.raises(ConfigFileError, match=why):
        Policy.parse(doc, "policy.json")


def test_load_policy_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read policy"):
        load_policy(tmp_path / "policy.json")
    (tmp_path / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    assert load_policy(tmp_path / "policy.json").default == (AcceptAnything(),)


def test_signed_identity_rules() -> None:
    tagged = parse_reference("q.io/ns/app:1")
    pinned = parse_reference(f"q.io/ns/app@{DIGEST}")
    default = SignedIdentity()
    assert default.matches(tagged, "q.io/ns/app:1")
    assert not default.matches(tagged, "q.io/ns/app:2")
    assert default.matches(pinned, "q.io/ns/app:anything")
    assert not default.matches(pinned, "q.io/ns/other:1")
    assert default.matches(parse_reference("q.io/ns/app"), "q.io/ns/app:latest")
    exact = SignedIdentity(type="matchExact")
    assert exact.matches(tagged, "q.io/ns/app:1")
    assert not exact.matches(pinned, f"q.io/ns/app@{DIGEST}")
    repo = SignedIdentity(type="matchRepository")
    assert repo.matches(tagged, "q.io/ns/app:9") and not repo.matches(tagged, "q.io/ns/x:1")
    assert SignedIdentity(type="exactReference", docker_reference="z.io/a:1").matches(
        tagged, "z.io/a:1"
    )
    assert not SignedIdentity(type="exactReference", docker_reference="z.io/a:1").matches(
        tagged, "z.io/a:2"
    )
    assert SignedIdentity(type="exactRepository", docker_repository="z.io/a").matches(
        tagged, "z.io/a:7"
    )
    remap = SignedIdentity(type="remapIdentity", prefix="mirror.local/ns", signed_prefix="q.io/ns")
    assert remap.matches(parse_reference("mirror.local/ns/app:1"), "q.io/ns/app:1")
    assert not remap.matches(parse_reference("mirror.local/ns/app:1"), "mirror.local/ns/app:2")
    assert not default.matches(tagged, "Not Valid")


def test_dsse_pae_matches_the_spec_example() -> None:
    from ociimage.bundles import dsse_pae, parse_bundle
    from ociimage.errors import SignatureVerificationError

    assert dsse_pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    with pytest.raises(SignatureVerificationError, match="the bundle is not a JSON object"):
        parse_bundle(b"[]")
    with pytest.raises(SignatureVerificationError, match="message-signature"):
        parse_bundle(b'{"messageSignature": {}}')


def test_keyless_requirement_parsing(tmp_path: Path) -> None:
    from ociimage.testing.keyless import FulcioCA, RekorLog

    ca, rekor = FulcioCA(), RekorLog()
    (tmp_path / "ca.pem").write_bytes(ca.root_pem)
    (tmp_path / "rekor.pub").write_bytes(rekor.public_pem)
    issuer, email = "https://oidc.example", "me@example.com"

    def parse(req: dict[str, object]) -> SigstoreSigned:
        doc = {"default": [{"type": "sigstoreSigned", **req}]}
        parsed = Policy.parse(json.dumps(doc), base=tmp_path).default[0]
        assert isinstance(parsed, SigstoreSigned)
        return parsed

    by_path = parse(
        {
            "fulcio": {"caPath": "ca.pem", "oidcIssuer": issuer, "subjectEmail": email},
            "rekorPublicKeyPath": "rekor.pub",
        }
    )
    assert by_path.fulcio is not None and by_path.fulcio.ca_certificates == ca.root_pem
    assert (by_path.fulcio.oidc_issuer, by_path.fulcio.subject_email) == (issuer, email)
    assert by_path.rekor_keys == (rekor.public_pem,) and by_path.keys == ()
    by_data = parse(
        {
            "fulcio": {
                "caData": base64.b64encode(ca.chain_pem).decode(),
                "oidcIssuer": issuer,
                "subjectEmail": email,
            },
            "rekorPublicKeyDatas": [base64.b64encode(rekor.public_pem).decode()],
        }
    )
    assert by_data.fulcio is not None and by_data.fulcio.ca_certificates == ca.chain_pem
    assert by_data.rekor_keys == (rekor.public_pem,)

    fulcio = {"caPath": "ca.pem", "oidcIssuer": issuer, "subjectEmail": email}
    rekor_key = {"rekorPublicKeyPath": "rekor.pub"}
    (tmp_path / "not-a-cert.pem").write_bytes(b"hello")
    bad: list[tuple[dict[str, object], str]] = [
        ({"fulcio": fulcio}, "fulcio needs rekorPublicKeyPath"),
        ({"fulcio": fulcio, "keyData": "eA==", **rekor_key}, "only one of keys, fulcio"),
        ({"fulcio": {**fulcio, "caData": "eA=="}, **rekor_key}, "exactly one of caPath, caData"),
        ({"fulcio": {**fulcio, "extra": 1}, **rekor_key}, "unknown fields"),
        ({"fulcio": {"caPath": "ca.pem", "subjectEmail": email}, **rekor_key}, "oidcIssuer"),
        ({"fulcio": {"caPath": "ca.pem", "oidcIssuer": issuer}, **rekor_key}, "subjectEmail"),
        ({"fulcio": {**fulcio, "caPath": "not-a-cert.pem"}, **rekor_key}, "no PEM certificate"),
        ({"fulcio": "ca.pem", **rekor_key}, "fulcio must be an object"),
        (
            {"fulcio": fulcio, "rekorPublicKeyPath": "rekor.pub", "rekorPublicKeyData": "eA=="},
            "only one of rekorPublicKeyPath, rekorPublicKeyData",
        ),
        ({"fulcio": fulcio, "rekorPublicKeyData": "!!"}, "rekorPublicKeyData is not base64"),
    ]
    for req, why in bad:
        with pytest.raises(ConfigFileError, match=why):
            parse(req)
