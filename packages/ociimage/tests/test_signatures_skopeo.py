"""ociimage's signature policy gives skopeo's answer, case by case, on the same files.

Real GPG keys sign with ``skopeo standalone-sign``; signatures live in a ``file://``
lookaside named by registries.d; every case runs ``skopeo copy`` (containers/image) and
ociimage's pull on the same policy.json, registries.d and loopback registry, and both
must agree with the expected answer. Images pulled through an index are checked against
the platform manifest pulled, not the index, as containers/image does. A rejected pull
writes nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ociimage.errors import PolicyRejectedError
from ociimage.layout import OCILayoutSink
from ociimage.policy import load_policy
from ociimage.pull import Puller
from ociimage.registries import RegistriesConfig
from ociimage.registries_d import load_registries_d
from ociimage.testing import (
    DOCKER_REGISTRY,
    Blob,
    BuiltImage,
    BuiltIndex,
    LocalRegistry,
    Platform,
    RegistryPusher,
    build_image,
)
from ociimage.testing.gpg import GpgKeyring, store_lookaside
from ociimage.testing.layers import build_layer, file
from ociimage.testing.signing import SigningKey, push_signature

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY, "gpg", "gpgconf", "/usr/bin/gpgv", "skopeo")

SIGNER = "signer@crid.test"
STRANGER = "stranger@crid.test"
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


@dataclass
class World:
    """The registry, keys, lookaside and config files every case shares."""

    root: Path
    registry: LocalRegistry
    keyring: GpgKeyring
    lookaside: Path
    registries_d: Path
    cosign_key: SigningKey
    refs: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.registry.host

    def sign(self, manifest: bytes, reference: str, email: str = SIGNER) -> bytes:
        return self.keyring.sign_manifest(manifest, reference, email)

    def store(self, repository: str, digest: str, *signatures: bytes) -> None:
        for n, blob in enumerate(signatures, 1):
            store_lookaside(self.lookaside, repository, digest, n, blob)


def _image(repository: str, tag: str = "v1", platform: Platform = AMD64) -> BuiltImage:
    layer = build_layer([file("etc/crid-signature-test", f"{repository} {platform}\n")])
    return build_image(
        repository, tag, [layer], platform=platform, config={"Labels": {"repo": repository}}
    )


def _index(repository: str) -> BuiltIndex:
    images = tuple(_image(repository, f"v1-{p.architecture}", platform=p) for p in (AMD64, ARM64))
    doc = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [i.manifest.descriptor(platform=i.platform.as_dict()) for i in images],
    }
    return BuiltIndex(repository, "v1", Blob.json(INDEX_MEDIA_TYPE, doc), images)


def _singles(w: World, pusher: RegistryPusher) -> None:
    """Single-platform images and their lookaside signatures (``w.refs`` by case)."""
    host = w.host

    def push(case: str, repo: str) -> BuiltImage:
        image = _image(repo)
        pusher.push_image(image)
        w.refs[case] = f"{host}/{repo}:v1"
        return image

    signed = push("signed", "sig/signed")
    w.store(
        signed.repository, signed.manifest_digest, w.sign(signed.manifest.data, w.refs["signed"])
    )
    w.refs["armoured-key"] = w.refs["signed"]
    w.refs["by-digest"] = f"{host}/{signed.repository}@{signed.manifest_digest}"

    push("unsigned", "sig/unsigned")

    wrong = push("wrong-key", "sig/wrong-key")
    w.store(
        wrong.repository,
        wrong.manifest_digest,
        w.sign(wrong.manifest.data, w.refs["wrong-key"], STRANGER),
    )

    other_name = push("identity-mismatch", "sig/identity")
    w.store(
        other_name.repository,
        other_name.manifest_digest,
        w.sign(other_name.manifest.data, f"{host}/sig/somebody-else:v1"),
    )

    # the same image under a new repository, its signature copied along: it names the old one
    original = _image("sig/original")
    pusher.push_image(original)
    renamed = BuiltImage(
        "sig/renamed", "v1", original.platform, original.manifest, original.config,
        original.layers, original.tree,
    )  # fmt: skip
    pusher.push_image(renamed)
    signature = w.sign(original.manifest.data, f"{host}/sig/original:v1")
    w.store(original.repository, original.manifest_digest, signature)
    w.store(renamed.repository, renamed.manifest_digest, signature)
    w.refs["renamed-repo"] = w.refs["renamed-repo-remapped"] = f"{host}/sig/renamed:v1"

    tampered = push("tampered", "sig/tampered")
    blob = bytearray(w.sign(tampered.manifest.data, w.refs["tampered"]))
    blob[len(blob) // 2] ^= 0x01
    w.store(tampered.repository, tampered.manifest_digest, bytes(blob))

    # a valid signature by the trusted key, but of another image's manifest
    replayed = push("other-digest", "sig/other-digest")
    w.store(
        replayed.repository,
        replayed.manifest_digest,
        w.sign(signed.manifest.data, w.refs["other-digest"]),
    )

    several = push("several-one-good", "sig/several")
    ref = w.refs["several-one-good"]
    w.store(
        several.repository,
        several.manifest_digest,
        w.sign(several.manifest.data, ref, STRANGER),
        w.sign(several.manifest.data, f"{host}/sig/somebody-else:v1"),
        w.sign(several.manifest.data, ref),
    )
    none_good = push("several-none-good", "sig/several-bad")
    ref = w.refs["several-none-good"]
    w.store(
        none_good.repository,
        none_good.manifest_digest,
        w.sign(none_good.manifest.data, ref, STRANGER),
        w.sign(signed.manifest.data, ref),
    )

    # signed for another tag of the same repository
    tagged = push("other-tag", "sig/other-tag")
    w.store(
        tagged.repository,
        tagged.manifest_digest,
        w.sign(tagged.manifest.data, f"{host}/sig/other-tag:v2"),
    )
    w.refs["other-tag-match-repository"] = w.refs["other-tag"]


def _indexes(w: World, pusher: RegistryPusher) -> None:
    """Indexes whose own and platform manifests' signatures disagree."""
    host = w.host
    for case, repo, sign_index, sign_platform in (
        ("index-unsigned-platform-signed", "idx/platform-signed", False, True),
        ("index-signed-platform-unsigned", "idx/index-signed", True, False),
        ("index-and-platform-signed", "idx/both-signed", True, True),
    ):
        index = _index(repo)
        pusher.push_index(index)
        ref = f"{host}/{repo}:v1"
        w.refs[case] = ref
        amd64 = index.for_platform("amd64")
        if sign_index:
            w.store(repo, index.digest, w.sign(index.index.data, ref))
        if sign_platform:
            w.store(repo, amd64.manifest_digest, w.sign(amd64.manifest.data, ref))
    both = "idx/both-signed"
    w.refs["index-by-digest"] = f"{host}/{both}@{_index(both).digest}"

    # the same two shapes with cosign signatures (sigstoreSigned)
    for case, repo, sign_index, sign_platform in (
        ("sigstore-index-unsigned-platform-signed", "cosign/platform-signed", False, True),
        ("sigstore-index-signed-platform-unsigned", "cosign/index-signed", True, False),
    ):
        index = _index(repo)
        pusher.push_index(index)
        ref = f"{host}/{repo}:v1"
        w.refs[case] = ref
        amd64 = index.for_platform("amd64")
        for wanted, digest in ((sign_index, index.digest), (sign_platform, amd64.manifest_digest)):
            if wanted:
                push_signature(w.registry, repo, digest, w.cosign_key, payload_reference=ref)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("skopeo-compare")
    keyring = GpgKeyring.create(root / "gnupg", SIGNER, STRANGER)
    try:
        (root / "signer.gpg").write_bytes(keyring.export(SIGNER))
        (root / "signer.asc").write_bytes(keyring.export(SIGNER, armor=True))
        cosign_key = SigningKey.generate("p256")
        (root / "cosign.pub").write_bytes(cosign_key.public_pem())
        lookaside = root / "lookaside"
        registries_d = root / "registries.d"
        registries_d.mkdir()
        (registries_d / "default.yaml").write_text(
            f"default-docker:\n  lookaside: file://{lookaside}\n  use-sigstore-attachments: true\n"
        )
        (root / "registries.conf").write_text("")
        with LocalRegistry() as registry:
            w = World(root, registry, keyring, lookaside, registries_d, cosign_key)
            with RegistryPusher(registry) as pusher:
                _singles(w, pusher)
                _indexes(w, pusher)
            yield w
    finally:
        keyring.close()


def _signed_by(w: World, key: str = "signer.gpg", **identity: Any) -> list[dict[str, Any]]:
    req: dict[str, Any] = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(w.root / key)}
    if identity:
        req["signedIdentity"] = identity
    return [req]


def _sigstore(w: World) -> list[dict[str, Any]]:
    return [{"type": "sigstoreSigned", "keyPath": str(w.root / "cosign.pub")}]


Requirements = Callable[[World], list[dict[str, Any]]]

#: case -> (the requirements for the registry's scope, whether the image is accepted)
CASES: dict[str, tuple[Requirements, bool]] = {
    "signed": (_signed_by, True),
    "unsigned": (_signed_by, False),
    "wrong-key": (_signed_by, False),
    "identity-mismatch": (_signed_by, False),
    "renamed-repo": (_signed_by, False),
    "renamed-repo-remapped": (
        lambda w: _signed_by(
            w,
            type="remapIdentity",
            prefix=f"{w.host}/sig/renamed",
            signedPrefix=f"{w.host}/sig/original",
        ),
        True,
    ),
    "by-digest": (_signed_by, True),
    "tampered": (_signed_by, False),
    "other-digest": (_signed_by, False),
    "several-one-good": (_signed_by, True),
    "several-none-good": (_signed_by, False),
    "armoured-key": (lambda w: _signed_by(w, "signer.asc"), True),
    "other-tag": (_signed_by, False),
    "other-tag-match-repository": (lambda w: _signed_by(w, type="matchRepository"), True),
    "index-unsigned-platform-signed": (_signed_by, True),
    "index-signed-platform-unsigned": (_signed_by, False),
    "index-and-platform-signed": (_signed_by, True),
    "index-by-digest": (_signed_by, True),
}

#: sigstoreSigned through an index: Debian's skopeo is built without sigstore ("sigstore
#: disabled"), so these hold ociimage to containers/image's rule without running it.
SIGSTORE_CASES: dict[str, bool] = {
    "sigstore-index-unsigned-platform-signed": True,
    "sigstore-index-signed-platform-unsigned": False,
}


def _policy_file(w: World, case: str, requirements: list[dict[str, Any]]) -> Path:
    doc = {
        "default": [{"type": "reject"}],
        "transports": {"docker": {w.host: requirements}},
    }
    path = w.root / f"policy-{case}.json"
    path.write_text(json.dumps(doc))
    return path


def _skopeo_accepts(w: World, policy: Path, ref: str, dest: Path) -> tuple[bool, str]:
    home = w.root / "skopeo-home"
    home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [
            "skopeo",
            "--policy",
            str(policy),
            "--registries.d",
            str(w.registries_d),
            "--override-os",
            "linux",
            "--override-arch",
            "amd64",
            "copy",
            "--quiet",
            "--remove-signatures",
            "--src-tls-verify=false",
            "--src-no-creds",
            f"docker://{ref}",
            f"oci:{dest}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "CONTAINERS_REGISTRIES_CONF": str(w.root / "registries.conf"),
            "GNUPGHOME": str(home / "gnupg"),
        },
    )
    if proc.returncode != 0:
        # only a policy rejection counts as "rejects", never another failure
        assert "Source image rejected" in proc.stderr, proc.stderr
    return proc.returncode == 0, proc.stderr


async def _ociimage_accepts(w: World, policy: Path, ref: str, dest: Path) -> tuple[bool, str]:
    conf = RegistriesConfig().with_insecure([w.host])
    async with Puller(
        registries=conf, policy=load_policy(policy), registries_d=load_registries_d(w.registries_d)
    ) as puller:
        try:
            result = await puller.pull(ref, OCILayoutSink(dest), platform="linux/amd64")
        except PolicyRejectedError as err:
            assert not dest.exists(), "a rejected pull wrote to the layout"
            return False, str(err)
    assert result.policy is not None and result.policy.digest == result.manifest.digest
    return True, ""


@pytest.mark.parametrize("case", list(CASES))
async def test_ociimage_answers_as_skopeo(world: World, tmp_path: Path, case: str) -> None:
    requirements, expected = CASES[case]
    policy = _policy_file(world, case, requirements(world))
    ref = world.refs[case]
    skopeo, skopeo_why = _skopeo_accepts(world, policy, ref, tmp_path / "skopeo")
    ours, our_why = await _ociimage_accepts(world, policy, ref, tmp_path / "ociimage")
    assert (skopeo, ours) == (expected, expected), (skopeo_why, our_why)


@pytest.mark.parametrize("case", list(SIGSTORE_CASES))
async def test_sigstore_signatures_are_checked_on_the_platform_manifest(
    world: World, tmp_path: Path, case: str
) -> None:
    policy = _policy_file(world, case, _sigstore(world))
    ours, why = await _ociimage_accepts(world, policy, world.refs[case], tmp_path / "oci")
    assert ours == SIGSTORE_CASES[case], why
    if not ours:
        assert "no sigstore signatures found" in why


async def test_index_rejection_names_the_platform_digest(world: World, tmp_path: Path) -> None:
    case = "index-signed-platform-unsigned"
    policy = _policy_file(world, case, _signed_by(world))
    ours, why = await _ociimage_accepts(world, policy, world.refs[case], tmp_path / "oci")
    platform = _index("idx/index-signed").for_platform("amd64").manifest_digest
    assert not ours and "no signatures in the lookaside" in why
    assert platform in why
