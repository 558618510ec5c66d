"""Signed, unsigned and tampered images against several policies, on a real registry."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from ociimage.testing.signing import SigningKey, push_signature

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY)


@pytest.fixture(scope="module")
def signed_registry() -> Iterator[LocalRegistry]:
    with LocalRegistry() as registry:
        yield registry


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {kind: SigningKey.generate(kind) for kind in ("p256", "p384", "rsa", "ed25519")}


def _image(registry: LocalRegistry, repo: str) -> PushedImage:
    base = busybox_image()
    # a label per repository keeps every test image's digest distinct
    built = build_image(
        repo, "v1", list(base.layers), platform=base.platform, config={"Labels": {"repo": repo}}
    )
    return push_image(registry, built)


def _policy(tmp_path: Path, docker: dict[str, object]) -> Policy:
    return Policy.parse(
        json.dumps({"default": [{"type": "reject"}], "transports": {"docker": docker}}),
        base=tmp_path,
    )


def _key_file(tmp_path: Path, key: SigningKey, name: str) -> str:
    (tmp_path / name).write_bytes(key.public_pem())
    return name


async def _pull(registry: LocalRegistry, policy: Policy, ref: str, dest: Path) -> str:
    conf = RegistriesConfig().with_insecure([registry.host])
    async with Puller(registries=conf, policy=policy) as puller:
        result = await puller.pull(ref, OCILayoutSink(dest))
    assert result.policy is not None
    return result.policy.scope


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa", "ed25519"])
async def test_signed_image_is_accepted(
    signed_registry: LocalRegistry, keys: dict[str, SigningKey], tmp_path: Path, kind: str
) -> None:
    image = _image(signed_registry, f"signed/{kind}")
    push_signature(
        signed_registry,
        image.repository,
        image.manifest_digest,
        keys[kind],
        payload_reference=image.reference,
    )
    key = _key_file(tmp_path, keys[kind], "key.pub")
    other = _key_file(tmp_path, keys["p256" if kind != "p256" else "rsa"], "other.pub")
    policy = _policy(
        tmp_path,
        {signed_registry.host: [{"type": "sigstoreSigned", "keyPaths": [other, key]}]},
    )
    assert (
        await _pull(signed_registry, policy, image.reference, tmp_path / "oci")
        == signed_registry.host
    )
    assert (tmp_path / "oci" / "blobs" / "sha256" / image.layer_digests[0].split(":")[1]).exists()


async def test_rejections_name_scope_and_requirement_and_download_nothing(
    signed_registry: LocalRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    key = _key_file(tmp_path, keys["p256"], "key.pub")
    wrong_key = _key_file(tmp_path, keys["ed25519"], "wrong.pub")
    unsigned = _image(signed_registry, "policy/unsigned")
    tampered = _image(signed_registry, "policy/tampered")
    push_signature(
        signed_registry,
        tampered.repository,
        tampered.manifest_digest,
        keys["p256"],
        payload_reference=tampered.reference,
        tamper=True,
    )
    other_digest = _image(signed_registry, "policy/other-digest")
    push_signature(
        signed_registry,
        other_digest.repository,
        other_digest.manifest_digest,
        keys["p256"],
        payload_reference=other_digest.reference,
        payload_digest=unsigned.manifest_digest,
    )
    wrong_identity = _image(signed_registry, "policy/identity")
    push_signature(
        signed_registry,
        wrong_identity.repository,
        wrong_identity.manifest_digest,
        keys["p256"],
        payload_reference=f"{signed_registry.host}/policy/somebody-else:v1",
    )
    signed = _image(signed_registry, "policy/signed")
    push_signature(
        signed_registry,
        signed.repository,
        signed.manifest_digest,
        keys["p256"],
        payload_reference=signed.reference,
    )
    host = signed_registry.host
    sig = [{"type": "sigstoreSigned", "keyPath": key}]
    cases = [
        (unsigned, {host: sig}, host, "sigstoreSigned", "no sigstore signatures"),
        (tampered, {host: sig}, host, "sigstoreSigned", "does not verify"),
        (other_digest, {host: sig}, host, "sigstoreSigned", "not this image"),
        (wrong_identity, {host: sig}, host, "sigstoreSigned", "does not match"),
        (
            signed,
            {host: [{"type": "sigstoreSigned", "keyPath": wrong_key}]},
            host,
            "sigstoreSigned",
            "does not verify",
        ),
        (
            signed,
            {f"{host}/policy": [{"type": "reject"}], host: sig},
            f"{host}/policy",
            "reject",
            "rejects every image",
        ),
        (
            signed,
            {
                "": [
                    {"type": "insecureAcceptAnything"},
                    {"type": "signedBy", "keyType": "GPGKeys", "keyData": "eA=="},
                ]
            },
            "",
            "signedBy",
            "no lookaside",
        ),
        (signed, {host: [{"type": "futureRequirement"}]}, host, "futureRequirement", "unknown"),
        (
            signed,
            {host: [{"type": "sigstoreSigned", "keyPath": key, "rekorPublicKeyPath": key}]},
            host,
            "sigstoreSigned",
            "Rekor",
        ),
        (
            signed,
            {"other.io": [{"type": "insecureAcceptAnything"}]},
            "default",
            "reject",
            "rejects",
        ),
        (
            signed,
            {
                host: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": key,
                        "signedIdentity": {"type": "exactRepository", "dockerRepository": "q.io/x"},
                    }
                ]
            },
            host,
            "sigstoreSigned",
            "does not match",
        ),
    ]
    for n, (image, docker, scope, requirement, reason) in enumerate(cases):
        dest = tmp_path / f"oci{n}"
        with pytest.raises(PolicyRejectedError, match=reason) as info:
            await _pull(signed_registry, _policy(tmp_path, docker), image.reference, dest)
        err = info.value
        assert (err.scope, err.requirement) == (scope, requirement), (n, str(err))
        assert image.reference in str(err)
        assert not (dest / "blobs").exists() or not any((dest / "blobs").rglob("*")), n

    # the same signed image passes once the identity rule fits
    ok = {
        host: [
            {
                "type": "sigstoreSigned",
                "keyPath": key,
                "signedIdentity": {"type": "matchRepository"},
            }
        ]
    }
    assert (
        await _pull(signed_registry, _policy(tmp_path, ok), signed.reference, tmp_path / "ok")
        == host
    )


async def test_policy_runs_before_any_layer_request(
    signed_registry: LocalRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    image = _image(signed_registry, "policy/order")
    with FaultyProxy(signed_registry.url) as proxy:
        policy = _policy(tmp_path, {"": [{"type": "reject"}]})
        ref = f"{proxy.host}/{image.repository}:v1"
        conf = RegistriesConfig().with_insecure([proxy.host])
        async with Puller(registries=conf, policy=policy) as puller:
            with pytest.raises(PolicyRejectedError):
                await puller.pull(ref, OCILayoutSink(tmp_path / "oci"))
        layer_requests = [r for r in proxy.requests if image.layer_digests[0] in r.path]
        assert layer_requests == []


# -- signedBy: OpenPGP signatures in a lookaside, verified with gpgv ----------------------


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    import subprocess

    proc = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ],
        input=data,
        capture_output=True,
        check=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C"},
    )
    return proc.stdout


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    _gpg(home, "--quick-gen-key", "crid test <signer@crid.test>", "ed25519", "sign", "never")
    _gpg(home, "--quick-gen-key", "stranger <stranger@crid.test>", "ed25519", "sign", "never")
    return home


def _atomic_payload(reference: str, digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "atomic container signature",
            },
            "optional": {"creator": "crid tests"},
        }
    ).encode()


def _store_signature(lookaside: Path, repo_path: str, digest: str, n: int, blob: bytes) -> None:
    alg, hexd = digest.split(":")
    target = lookaside / f"{repo_path}@{alg}={hexd}" / f"signature-{n}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob)


@pytest.mark.binaries("gpg", "/usr/bin/gpgv")
async def test_signed_by_gpg_keys_via_lookaside(
    signed_registry: LocalRegistry, gpg_home: Path, tmp_path: Path
) -> None:
    from ociimage.registries_d import RegistriesD

    signer_pub = _gpg(gpg_home, "--armor", "--export", "signer@crid.test")
    (tmp_path / "signer.asc").write_bytes(signer_pub)
    lookaside = tmp_path / "sigstore"
    registries_d = RegistriesD.parse(
        {"default.yaml": f"default-docker:\n  lookaside: file://{lookaside}\n"}
    )
    host = signed_registry.host
    policy = _policy(
        tmp_path, {host: [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "signer.asc"}]}
    )
    conf = RegistriesConfig().with_insecure([host])

    async def pull_with(image: PushedImage, dest: str) -> None:
        async with Puller(registries=conf, policy=policy, registries_d=registries_d) as puller:
            result = await puller.pull(image.reference, OCILayoutSink(tmp_path / dest))
        assert result.policy is not None and result.policy.signatures == 1

    good = _image(signed_registry, "gpg/good")
    # signature-1 by a stranger (not trusted), signature-2 by the trusted key: accepted
    payload = _atomic_payload(good.reference, good.manifest_digest)
    stranger = _gpg(gpg_home, "--local-user", "stranger@crid.test", "--sign", data=payload)
    signer = _gpg(gpg_home, "--local-user", "signer@crid.test", "--sign", data=payload)
    _store_signature(lookaside, good.repository, good.manifest_digest, 1, stranger)
    _store_signature(lookaside, good.repository, good.manifest_digest, 2, signer)
    await pull_with(good, "good")

    cases = []
    unsigned = _image(signed_registry, "gpg/unsigned")
    cases.append((unsigned, "no signatures in the lookaside"))
    untrusted = _image(signed_registry, "gpg/untrusted")
    _store_signature(
        lookaside,
        untrusted.repository,
        untrusted.manifest_digest,
        1,
        _gpg(
            gpg_home,
            "--local-user",
            "stranger@crid.test",
            "--sign",
            data=_atomic_payload(untrusted.reference, untrusted.manifest_digest),
        ),
    )
    cases.append((untrusted, "not signed by a trusted key"))
    tampered = _image(signed_registry, "gpg/tampered")
    blob = bytearray(signer)
    blob[len(blob) // 2] ^= 0x01
    _store_signature(lookaside, tampered.repository, tampered.manifest_digest, 1, bytes(blob))
    cases.append((tampered, "not signed by a trusted key"))
    replayed = _image(signed_registry, "gpg/replayed")  # good's signature copied here
    _store_signature(lookaside, replayed.repository, replayed.manifest_digest, 1, signer)
    cases.append((replayed, "not " + replayed.manifest_digest))
    for image, reason in cases:
        with pytest.raises(PolicyRejectedError, match=reason) as info:
            async with Puller(registries=conf, policy=policy, registries_d=registries_d) as p:
                await p.pull(image.reference, OCILayoutSink(tmp_path / "rejected"))
        assert info.value.requirement == "signedBy"
    assert not (tmp_path / "rejected" / "blobs").exists() or not any(
        (tmp_path / "rejected" / "blobs").rglob("*")
    )


async def test_sigstore_attachments_follow_registries_d(
    signed_registry: LocalRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    from ociimage.registries_d import RegistriesD

    image = _image(signed_registry, "attach/signed")
    push_signature(
        signed_registry,
        image.repository,
        image.manifest_digest,
        keys["p256"],
        payload_reference=image.reference,
    )
    key = _key_file(tmp_path, keys["p256"], "key.pub")
    policy = _policy(tmp_path, {"": [{"type": "sigstoreSigned", "keyPath": key}]})
    conf = RegistriesConfig().with_insecure([signed_registry.host])
    enable = "    use-sigstore-attachments: true\n"
    off = RegistriesD.parse({"a.yaml": f"docker:\n  other.io:\n{enable}"})
    on = RegistriesD.parse({"a.yaml": f"docker:\n  {signed_registry.host}/attach:\n{enable}"})
    async with Puller(registries=conf, policy=policy, registries_d=off) as puller:
        with pytest.raises(PolicyRejectedError, match="use-sigstore-attachments"):
            await puller.pull(image.reference, OCILayoutSink(tmp_path / "off"))
    async with Puller(registries=conf, policy=policy, registries_d=on) as puller:
        result = await puller.pull(image.reference, OCILayoutSink(tmp_path / "on"))
    assert result.policy is not None and result.policy.signatures == 1


async def test_sigstore_bundles_through_referrers(
    signed_registry: LocalRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    from ociimage.testing.signing import push_bundle

    key = _key_file(tmp_path, keys["p384"], "bundle.pub")
    host = signed_registry.host
    conf = RegistriesConfig().with_insecure([host])

    def policy(identity: dict[str, str] | None = None) -> Policy:
        req: dict[str, object] = {"type": "sigstoreSigned", "keyPath": key}
        if identity:
            req["signedIdentity"] = identity
        return _policy(tmp_path, {host: [req]})

    async def attempt(ref: str, pol: Policy, dest: str) -> int:
        async with Puller(registries=conf, policy=pol) as puller:
            result = await puller.pull(ref, OCILayoutSink(tmp_path / dest))
        assert result.policy is not None
        return result.policy.signatures

    image = _image(signed_registry, "bundle/signed")
    repo_name = f"{host}/{image.repository}"
    push_bundle(
        signed_registry,
        image.repository,
        image.manifest_digest,
        keys["p384"],
        subject_name=repo_name,
    )
    # a digest-signed bundle binds the repository, not a tag
    assert await attempt(image.reference, policy({"type": "matchRepository"}), "a") == 1
    assert await attempt(image.digest_reference, policy(), "b") == 1
    with pytest.raises(PolicyRejectedError, match="does not match"):
        await attempt(image.reference, policy(), "c")

    wrong = _image(signed_registry, "bundle/wrong-key")
    push_bundle(
        signed_registry,
        wrong.repository,
        wrong.manifest_digest,
        keys["rsa"],
        subject_name=f"{host}/{wrong.repository}",
    )
    with pytest.raises(PolicyRejectedError, match="DSSE signature: the signature does not verify"):
        await attempt(wrong.digest_reference, policy(), "d")

    other = _image(signed_registry, "bundle/other-digest")
    push_bundle(
        signed_registry,
        other.repository,
        other.manifest_digest,
        keys["p384"],
        subject_name=f"{host}/{other.repository}",
        statement_digest=image.manifest_digest,
    )
    with pytest.raises(PolicyRejectedError, match="not about"):
        await attempt(other.digest_reference, policy(), "e")


@pytest.mark.binaries("gpg", "/usr/bin/gpgv")
async def test_signed_by_via_the_registry_signature_api(
    signed_registry: LocalRegistry, gpg_home: Path, tmp_path: Path
) -> None:
    import base64

    import httpx

    image = _image(signed_registry, "gpg/api")
    (tmp_path / "signer.asc").write_bytes(_gpg(gpg_home, "--armor", "--export", "signer@crid.test"))
    with FaultyProxy(signed_registry.url) as proxy:
        ref = f"{proxy.host}/{image.repository}:v1"
        signature = _gpg(
            gpg_home,
            "--local-user",
            "signer@crid.test",
            "--sign",
            data=_atomic_payload(ref, image.manifest_digest),
        )
        real = proxy.upstream
        served: list[str] = []

        # the registry's signature API (as OpenShift's registry has), in front of a real one
        def route(request: httpx.Request) -> httpx.Response:
            if request.url.path.startswith("/extensions/v2/"):
                served.append(request.url.path)
                entry = {
                    "version": 2,
                    "type": "atomic",
                    "name": f"{image.manifest_digest}@x",
                    "content": base64.b64encode(signature).decode(),
                }
                return httpx.Response(200, json={"signatures": [entry]})
            forwarded = real.request(
                request.method,
                request.url.path + ("?" + request.url.query.decode() if request.url.query else ""),
                headers=request.headers,
                content=request.content,
            )
            return httpx.Response(
                forwarded.status_code, headers=forwarded.headers, content=forwarded.content
            )

        proxy.upstream = httpx.Client(
            base_url=signed_registry.url, transport=httpx.MockTransport(route)
        )
        policy = _policy(
            tmp_path,
            {proxy.host: [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "signer.asc"}]},
        )
        conf = RegistriesConfig().with_insecure([proxy.host])
        async with Puller(registries=conf, policy=policy) as puller:
            result = await puller.pull(ref, OCILayoutSink(tmp_path / "oci"))
        real.close()
    assert result.policy is not None and result.policy.signatures == 1
    assert served == [f"/extensions/v2/{image.repository}/signatures/{image.manifest_digest}"]
