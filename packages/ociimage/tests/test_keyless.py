"""Keyless sigstore (Fulcio certificates + Rekor SETs) against a real registry.

The tests run their own Fulcio-like CA and Rekor-like log (ociimage.testing.keyless),
push cosign ``.sig`` images and Sigstore bundles to the loopback registry and pull with
keyless policies; every broken part of a signature must reject, naming what failed.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ociimage.errors import PolicyRejectedError
from ociimage.layout import OCILayoutSink
from ociimage.policy import Policy
from ociimage.pull import Puller
from ociimage.registries import RegistriesConfig
from ociimage.testing import (
    DOCKER_REGISTRY,
    LocalRegistry,
    PushedImage,
    build_image,
    busybox_image,
    push_image,
)
from ociimage.testing.faults import FaultyProxy
from ociimage.testing.keyless import (
    FulcioCA,
    KeylessSigner,
    RekorLog,
    keyless_annotations,
    keyless_bundle,
)
from ociimage.testing.signing import (
    SigningKey,
    attach_bundle,
    in_toto_statement,
    push_signed_layer,
    simple_signing_payload,
    tampered,
)

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY)

ISSUER = "https://oidc.crid.test"
EMAIL = "builder@crid.test"
SIGNATURE = "dev.cosignproject.cosign/signature"
BUNDLE = "dev.sigstore.cosign/bundle"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"


@pytest.fixture(scope="module")
def ca() -> FulcioCA:
    return FulcioCA()


@pytest.fixture(scope="module")
def rekor() -> RekorLog:
    return RekorLog()


@pytest.fixture(scope="module")
def signer(ca: FulcioCA) -> KeylessSigner:
    return ca.issue(email=EMAIL, issuer=ISSUER)


@pytest.fixture(scope="module")
def trust_dir(tmp_path_factory: pytest.TempPathFactory, ca: FulcioCA, rekor: RekorLog) -> Path:
    """fulcio.pem (the root), fulcio-chain.pem (intermediate and root), rekor.pub."""
    path = tmp_path_factory.mktemp("trust")
    (path / "fulcio.pem").write_bytes(ca.root_pem)
    (path / "fulcio-chain.pem").write_bytes(ca.chain_pem)
    (path / "rekor.pub").write_bytes(rekor.public_pem)
    return path


def _image(registry: LocalRegistry, repo: str) -> PushedImage:
    base = busybox_image()
    built = build_image(
        repo, "v1", list(base.layers), platform=base.platform, config={"Labels": {"repo": repo}}
    )
    return push_image(registry, built)


def _keyless(ca_file: str = "fulcio.pem", **fulcio: str) -> dict[str, object]:
    return {
        "type": "sigstoreSigned",
        "fulcio": {"caPath": ca_file, "oidcIssuer": ISSUER, "subjectEmail": EMAIL, **fulcio},
        "rekorPublicKeyPath": "rekor.pub",
    }


def _policy(trust_dir: Path, scope: str, requirement: dict[str, object]) -> Policy:
    doc = {"default": [{"type": "reject"}], "transports": {"docker": {scope: [requirement]}}}
    return Policy.parse(json.dumps(doc), base=trust_dir)


async def _pull(registry_host: str, policy: Policy, ref: str, dest: Path) -> int:
    conf = RegistriesConfig().with_insecure([registry_host])
    async with Puller(registries=conf, policy=policy) as puller:
        result = await puller.pull(ref, OCILayoutSink(dest))
    assert result.policy is not None
    return result.policy.signatures


def _payload(image: PushedImage) -> bytes:
    return simple_signing_payload(image.reference, image.manifest_digest)


@pytest.mark.parametrize("extensions", [("v1",), ("v2",), ("v1", "v2")])
async def test_keyless_signature_is_accepted(
    registry: LocalRegistry,
    ca: FulcioCA,
    rekor: RekorLog,
    trust_dir: Path,
    tmp_path: Path,
    extensions: tuple[str, ...],
) -> None:
    image = _image(registry, f"keyless/ok-{'-'.join(extensions)}")
    signer = ca.issue(email=EMAIL, issuer=ISSUER, issuer_extensions=extensions)
    payload = _payload(image)
    push_signed_layer(
        registry,
        image.repository,
        image.manifest_digest,
        payload,
        keyless_annotations(payload, signer, rekor),
    )
    policy = _policy(trust_dir, registry.host, _keyless())
    assert await _pull(registry.host, policy, image.reference, tmp_path / "oci") == 1
    layer = image.layer_digests[0].split(":")[1]
    assert (tmp_path / "oci" / "blobs" / "sha256" / layer).exists()


def _case_annotations(
    ca: FulcioCA, rekor: RekorLog, signer: KeylessSigner, other_image_payload: bytes
) -> list[tuple[str, Callable[[bytes], tuple[bytes, dict[str, str]]], str]]:
    """(name, payload -> (stored payload, annotations), expected reason)."""
    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    stranger_ca = FulcioCA("stranger")
    stranger_log = RekorLog()

    def signed_by(
        who: KeylessSigner, log: RekorLog = rekor, at: int | None = None
    ) -> Callable[[bytes], tuple[bytes, dict[str, str]]]:
        return lambda p: (p, keyless_annotations(p, who, log, integrated_time=at))

    def without(key: str) -> Callable[[bytes], tuple[bytes, dict[str, str]]]:
        def make(p: bytes) -> tuple[bytes, dict[str, str]]:
            annotations = keyless_annotations(p, signer, rekor)
            del annotations[key]
            return p, annotations

        return make

    def tamper(p: bytes) -> tuple[bytes, dict[str, str]]:
        return tampered(p), keyless_annotations(p, signer, rekor)

    def set_changed(field: str, value: object) -> Callable[[bytes], tuple[bytes, dict[str, str]]]:
        def make(p: bytes) -> tuple[bytes, dict[str, str]]:
            annotations = keyless_annotations(p, signer, rekor)
            bundle = json.loads(annotations[BUNDLE])
            if field == "SignedEntryTimestamp":
                bundle[field] = value
            else:
                bundle["Payload"][field] = value
            annotations[BUNDLE] = json.dumps(bundle)
            return p, annotations

        return make

    def entry_of(
        make_entry: Callable[[bytes, str], object],
    ) -> Callable[[bytes], tuple[bytes, dict[str, str]]]:
        """A valid SET, but over the entry ``make_entry(payload, signature)`` returns."""

        def make(p: bytes) -> tuple[bytes, dict[str, str]]:
            annotations = keyless_annotations(p, signer, rekor)
            entry = make_entry(p, annotations[SIGNATURE])
            assert isinstance(entry, dict)
            annotations[BUNDLE] = rekor.log(entry).cosign_annotation()
            return p, annotations

        return make

    other_signer = ca.issue(email=EMAIL, issuer=ISSUER)
    expired = ca.issue(
        email=EMAIL,
        issuer=ISSUER,
        not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2),
    )
    return [
        (
            "wrong issuer",
            signed_by(ca.issue(email=EMAIL, issuer="https://evil.test")),
            "OIDC issuer 'https://evil.test' is not the policy's",
        ),
        (
            "issuer extensions disagree",
            signed_by(ca.issue(email=EMAIL, issuer=ISSUER, legacy_issuer="https://evil.test")),
            "OIDC issuer extensions disagree",
        ),
        (
            "wrong email",
            signed_by(ca.issue(email="mallory@crid.test", issuer=ISSUER)),
            r"email SAN \(mallory@crid.test\) is not the policy's",
        ),
        (
            "untrusted CA",
            signed_by(stranger_ca.issue(email=EMAIL, issuer=ISSUER)),
            "does not chain to the policy's Fulcio CA",
        ),
        ("expired when logged", signed_by(expired), "was not valid at"),
        (
            "not yet valid when logged",
            signed_by(signer, at=now - 3600),
            "was not valid at",
        ),
        ("tampered payload", tamper, "does not verify with the Fulcio certificate's key"),
        ("missing SET", without(BUNDLE), "no Rekor SET"),
        ("missing certificate", without(CERTIFICATE), "no Fulcio signing certificate"),
        ("missing chain", without(CHAIN), "does not chain to the policy's Fulcio CA"),
        (
            "SET by another log",
            signed_by(signer, stranger_log),
            "signed entry timestamp does not verify",
        ),
        (
            "corrupt SET",
            set_changed("SignedEntryTimestamp", "AAAA"),
            "signed entry timestamp does not verify",
        ),
        (
            "backdated SET",
            set_changed("integratedTime", now - 60),
            "signed entry timestamp does not verify",
        ),
        ("malformed SET", set_changed("logIndex", "x"), "logIndex is not an integer"),
        (
            "SET for another payload",
            entry_of(
                lambda p, s: RekorLog.hashedrekord(other_image_payload, s, signer.certificate_pem)
            ),
            "Rekor entry is for another payload",
        ),
        (
            "SET for another signature",
            entry_of(
                lambda p, s: RekorLog.hashedrekord(p, signer.key.sign(p), signer.certificate_pem)
            ),
            "Rekor entry is for another signature",
        ),
        (
            "SET for another certificate",
            entry_of(lambda p, s: RekorLog.hashedrekord(p, s, other_signer.certificate_pem)),
            "Rekor entry is for another key or certificate",
        ),
        (
            "SET for another kind of entry",
            entry_of(lambda p, s: RekorLog.dsse(p, [s], signer.certificate_pem)),
            "not 'hashedrekord' 0.0.1",
        ),
    ]


async def test_keyless_rejections_say_what_failed(
    registry: LocalRegistry,
    ca: FulcioCA,
    rekor: RekorLog,
    signer: KeylessSigner,
    trust_dir: Path,
    tmp_path: Path,
) -> None:
    elsewhere = _image(registry, "keyless/elsewhere")
    cases = _case_annotations(ca, rekor, signer, _payload(elsewhere))
    policy = _policy(trust_dir, registry.host, _keyless())
    for n, (name, make, reason) in enumerate(cases):
        image = _image(registry, f"keyless/reject-{n}")
        payload, annotations = make(_payload(image))
        push_signed_layer(registry, image.repository, image.manifest_digest, payload, annotations)
        dest = tmp_path / f"oci{n}"
        with pytest.raises(PolicyRejectedError, match=reason) as info:
            await _pull(registry.host, policy, image.reference, dest)
        err = info.value
        assert (err.scope, err.requirement) == (registry.host, "sigstoreSigned"), name
        assert image.reference in str(err), name
        assert not (dest / "blobs").exists() or not any((dest / "blobs").rglob("*")), name


async def test_keyless_policy_identity_and_trust_must_fit(
    registry: LocalRegistry,
    ca: FulcioCA,
    rekor: RekorLog,
    signer: KeylessSigner,
    trust_dir: Path,
    tmp_path: Path,
) -> None:
    image = _image(registry, "keyless/policy")
    payload = _payload(image)
    push_signed_layer(
        registry,
        image.repository,
        image.manifest_digest,
        payload,
        keyless_annotations(payload, signer, rekor),
    )
    (trust_dir / "stranger.pem").write_bytes(FulcioCA("stranger").root_pem)
    (trust_dir / "stranger-rekor.pub").write_bytes(RekorLog().public_pem)
    cases = [
        ({"type": "sigstoreSigned", "pki": {"caRootsPath": "fulcio.pem"}}, "pki"),
        (_keyless(oidcIssuer="https://other.test"), "is not the policy's 'https://other.test'"),
        (_keyless(subjectEmail="other@crid.test"), "is not the policy's 'other@crid.test'"),
        (_keyless("stranger.pem"), "does not chain"),
        (
            {**_keyless(), "rekorPublicKeyPath": "stranger-rekor.pub"},
            "signed entry timestamp does not verify",
        ),
        (
            {
                **_keyless(),
                "signedIdentity": {"type": "exactRepository", "dockerRepository": "q.io/x"},
            },
            "does not match",
        ),
    ]
    for n, (requirement, reason) in enumerate(cases):
        policy = _policy(trust_dir, registry.host, requirement)
        with pytest.raises(PolicyRejectedError, match=reason):
            await _pull(registry.host, policy, image.reference, tmp_path / f"oci{n}")
    # the intermediate may also come from the policy's CA file instead of the signature
    policy = _policy(trust_dir, registry.host, _keyless("fulcio-chain.pem"))
    assert await _pull(registry.host, policy, image.reference, tmp_path / "ok") == 1


async def test_a_ca_must_allow_code_signing(
    registry: LocalRegistry, rekor: RekorLog, trust_dir: Path, tmp_path: Path
) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    web_ca = FulcioCA("web", intermediate_usages=[ExtendedKeyUsageOID.SERVER_AUTH])
    (tmp_path / "web.pem").write_bytes(web_ca.root_pem)
    (tmp_path / "rekor.pub").write_bytes(rekor.public_pem)
    image = _image(registry, "keyless/web-ca")
    payload = _payload(image)
    signer = web_ca.issue(email=EMAIL, issuer=ISSUER)
    push_signed_layer(
        registry,
        image.repository,
        image.manifest_digest,
        payload,
        keyless_annotations(payload, signer, rekor),
    )
    policy = _policy(tmp_path, registry.host, _keyless("web.pem"))
    with pytest.raises(PolicyRejectedError, match="does not allow code signing"):
        await _pull(registry.host, policy, image.reference, tmp_path / "oci")


async def test_keyless_rejection_happens_before_any_layer_request(
    registry: LocalRegistry,
    ca: FulcioCA,
    rekor: RekorLog,
    trust_dir: Path,
    tmp_path: Path,
) -> None:
    image = _image(registry, "keyless/order")
    payload = _payload(image)
    mallory = ca.issue(email="mallory@crid.test", issuer=ISSUER)
    push_signed_layer(
        registry,
        image.repository,
        image.manifest_digest,
        payload,
        keyless_annotations(payload, mallory, rekor),
    )
    with FaultyProxy(registry.url) as proxy:
        policy = _policy(trust_dir, proxy.host, _keyless())
        ref = f"{proxy.host}/{image.repository}:v1"
        with pytest.raises(PolicyRejectedError, match="email SAN"):
            await _pull(proxy.host, policy, ref, tmp_path / "oci")
        assert [r for r in proxy.requests if image.layer_digests[0] in r.path] == []
        assert any(".sig" in r.path for r in proxy.requests)


async def test_keys_with_rekor_need_a_set_for_that_key(
    registry: LocalRegistry, rekor: RekorLog, trust_dir: Path, tmp_path: Path
) -> None:
    key, other = SigningKey.generate("p256"), SigningKey.generate("ed25519")
    (tmp_path / "key.pub").write_bytes(key.public_pem())
    (tmp_path / "rekor.pub").write_bytes(rekor.public_pem)
    requirement = {
        "type": "sigstoreSigned",
        "keyPath": "key.pub",
        "rekorPublicKeyPath": "rekor.pub",
    }
    policy = _policy(tmp_path, registry.host, requirement)

    def annotations(payload: bytes, logged_key: SigningKey) -> dict[str, str]:
        signature = key.sign(payload)
        entry = rekor.log(RekorLog.hashedrekord(payload, signature, logged_key.public_pem()))
        return {SIGNATURE: signature, BUNDLE: entry.cosign_annotation()}

    good = _image(registry, "rekor/good")
    push_signed_layer(
        registry,
        good.repository,
        good.manifest_digest,
        _payload(good),
        annotations(_payload(good), key),
    )
    assert await _pull(registry.host, policy, good.reference, tmp_path / "good") == 1

    wrong = _image(registry, "rekor/other-key")
    push_signed_layer(
        registry,
        wrong.repository,
        wrong.manifest_digest,
        _payload(wrong),
        annotations(_payload(wrong), other),
    )
    with pytest.raises(PolicyRejectedError, match="another key or certificate"):
        await _pull(registry.host, policy, wrong.reference, tmp_path / "wrong")

    unlogged = _image(registry, "rekor/unlogged")
    push_signed_layer(
        registry,
        unlogged.repository,
        unlogged.manifest_digest,
        _payload(unlogged),
        {SIGNATURE: key.sign(_payload(unlogged))},
    )
    with pytest.raises(PolicyRejectedError, match="no Rekor SET"):
        await _pull(registry.host, policy, unlogged.reference, tmp_path / "unlogged")


async def test_keyless_bundles_through_referrers(
    registry: LocalRegistry,
    ca: FulcioCA,
    rekor: RekorLog,
    signer: KeylessSigner,
    trust_dir: Path,
    tmp_path: Path,
) -> None:
    # a v0.3 bundle carries only the leaf: the CA file must hold the intermediate too
    policy = _policy(trust_dir, registry.host, _keyless("fulcio-chain.pem"))

    def statement(image: PushedImage) -> bytes:
        return in_toto_statement(f"{registry.host}/{image.repository}", image.manifest_digest)

    good = _image(registry, "kbundle/good")
    attach_bundle(
        registry,
        good.repository,
        good.manifest_digest,
        keyless_bundle(statement(good), signer, rekor),
    )
    assert await _pull(registry.host, policy, good.digest_reference, tmp_path / "good") == 1
    # a bundle with a SET and no inclusion proof is still verifiable offline
    promise_only = _image(registry, "kbundle/promise-only")
    attach_bundle(
        registry,
        promise_only.repository,
        promise_only.manifest_digest,
        keyless_bundle(statement(promise_only), signer, rekor, inclusion_proof=False),
    )
    assert await _pull(registry.host, policy, promise_only.digest_reference, tmp_path / "p") == 1
    root_only = _policy(trust_dir, registry.host, _keyless())
    with pytest.raises(PolicyRejectedError, match="does not chain"):
        await _pull(registry.host, root_only, good.digest_reference, tmp_path / "root-only")

    def no_tlog(doc: dict[str, object]) -> None:
        material = doc["verificationMaterial"]
        assert isinstance(material, dict)
        material["tlogEntries"] = []

    def no_promise(doc: dict[str, object]) -> None:
        material = doc["verificationMaterial"]
        assert isinstance(material, dict)
        del material["tlogEntries"][0]["inclusionPromise"]

    def other_payload(doc: dict[str, object]) -> None:
        material = doc["verificationMaterial"]
        assert isinstance(material, dict)
        envelope = doc["dsseEnvelope"]
        assert isinstance(envelope, dict)
        sigs = [s["sig"] for s in envelope["signatures"]]
        entry = rekor.log(RekorLog.dsse(b"another statement", sigs, signer.certificate_pem))
        material["tlogEntries"] = [entry.tlog_entry()]

    def backdated(doc: dict[str, object]) -> None:
        material = doc["verificationMaterial"]
        assert isinstance(material, dict)
        material["tlogEntries"][0]["integratedTime"] = "1"

    def bad_proof(doc: dict[str, object]) -> None:
        material = doc["verificationMaterial"]
        assert isinstance(material, dict)
        proof = material["tlogEntries"][0]["inclusionProof"]
        proof["hashes"] = list(reversed(proof["hashes"]))

    mallory = ca.issue(email="mallory@crid.test", issuer=ISSUER)
    cases: list[tuple[KeylessSigner, Callable[[dict[str, object]], None] | None, str]] = [
        (mallory, None, r"email SAN \(mallory@crid.test\)"),
        (FulcioCA("stranger").issue(email=EMAIL, issuer=ISSUER), None, "does not chain"),
        (signer, no_tlog, "no transparency-log entry"),
        (signer, no_promise, "no inclusionPromise"),
        (signer, other_payload, "Rekor entry is for another payload"),
        (signer, backdated, "signed entry timestamp does not verify"),
        (signer, bad_proof, "inclusion proof does not lead to its root hash"),
    ]
    for n, (who, change, reason) in enumerate(cases):
        image = _image(registry, f"kbundle/reject-{n}")
        doc = keyless_bundle(statement(image), who, rekor)
        if change is not None:
            change(doc)
        attach_bundle(registry, image.repository, image.manifest_digest, doc)
        with pytest.raises(PolicyRejectedError, match=reason) as info:
            await _pull(registry.host, policy, image.digest_reference, tmp_path / f"r{n}")
        assert "bundle sha256:" in str(info.value), n
