"""Pulling from registries that want Basic auth or Bearer tokens; pushing with tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ociimage.auth import Credentials, CredentialStore
from ociimage.client import RegistryClient
from ociimage.errors import AuthenticationError
from ociimage.layout import OCILayoutSink
from ociimage.pull import Puller, pull
from ociimage.registries import RegistriesConfig
from ociimage.testing import DOCKER_REGISTRY, BuiltImage, LocalRegistry, busybox_image
from ociimage.testing.tokens import TokenIssuer
from ocispec.image import Descriptor

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY)


def _conf(host: str) -> RegistriesConfig:
    return RegistriesConfig().with_insecure([host])


async def _push_as_alice(registry: LocalRegistry, image: BuiltImage) -> None:
    """Push ``image`` to a registry that wants alice's basic credentials."""
    async with RegistryClient(
        registry.host,
        insecure=True,
        credentials=Credentials(username="alice", password="s3cret"),
    ) as client:
        await _push(client, image)


async def _push(
    client: RegistryClient, image: BuiltImage, *, chunk_size: int | None = None
) -> None:
    repo = image.repository
    for blob in (image.config, *image.layers):
        desc = Descriptor(
            media_type="application/octet-stream", digest=blob.digest, size=len(blob.data)
        )
        await client.push_blob(repo, blob.data, desc, chunk_size=chunk_size)
    await client.push_manifest(repo, image.tag, image.manifest.data, image.manifest.media_type)


@pytest.fixture(scope="module")
def basic_registry() -> Iterator[LocalRegistry]:
    with LocalRegistry(htpasswd=("alice", "s3cret")) as registry:
        yield registry


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer(users={"bob": "hunter2"}, refresh_tokens={"rt-123": "bob"}) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def token_registry(issuer: TokenIssuer) -> Iterator[LocalRegistry]:
    with LocalRegistry(auth=issuer.registry_auth()) as registry:
        yield registry


async def test_basic_auth_pull(basic_registry: LocalRegistry, tmp_path: Path) -> None:
    image = busybox_image()
    await _push_as_alice(basic_registry, image)
    ref = image.reference(basic_registry.host)
    # explicit (CRI-style) credentials
    result = await pull(
        ref,
        OCILayoutSink(tmp_path / "a"),
        registries=_conf(basic_registry.host),
        credentials=Credentials.from_cri(auth=base64.b64encode(b"alice:s3cret").decode()),
    )
    assert result.manifest.digest == image.manifest_digest
    # from an auth.json
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(
        json.dumps(
            {"auths": {basic_registry.host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}}
        )
    )
    result = await pull(
        ref,
        OCILayoutSink(tmp_path / "b"),
        registries=_conf(basic_registry.host),
        credential_store=CredentialStore([auth_file]),
    )
    assert result.manifest.digest == image.manifest_digest
    # an empty CRI AuthConfig falls back to the auth files, as in CRI-O
    result = await pull(
        ref,
        OCILayoutSink(tmp_path / "b2"),
        registries=_conf(basic_registry.host),
        credentials=Credentials.from_cri(),
        credential_store=CredentialStore([auth_file]),
    )
    assert result.manifest.digest == image.manifest_digest
    with pytest.raises(AuthenticationError):
        await pull(
            ref,
            OCILayoutSink(tmp_path / "c"),
            registries=_conf(basic_registry.host),
            credentials=Credentials(username="alice", password="wrong"),
        )
    with pytest.raises(AuthenticationError, match="none are configured"):
        await pull(
            ref,
            OCILayoutSink(tmp_path / "d"),
            registries=_conf(basic_registry.host),
            credential_store=CredentialStore([]),
        )


async def test_token_auth_push_and_pull(
    token_registry: LocalRegistry, issuer: TokenIssuer, tmp_path: Path
) -> None:
    image = busybox_image()
    bob = Credentials(username="bob", password="hunter2")
    async with RegistryClient(token_registry.host, insecure=True, credentials=bob) as client:
        await _push(client, image, chunk_size=300_000)
    pushes = [t for t in issuer.issued if any("push" in s for s in t.scopes)]
    assert pushes and all(t.account == "bob" and t.method == "GET" for t in pushes)

    issuer.issued.clear()
    ref = image.reference(token_registry.host)
    async with Puller(registries=_conf(token_registry.host)) as puller:
        result = await puller.pull(ref, OCILayoutSink(tmp_path / "a"), credentials=bob)
        assert result.manifest.digest == image.manifest_digest
        # one token for the repository's pull scope, cached for every request after
        pulls = [t for t in issuer.issued if t.token]
        assert len(pulls) == 1
        assert pulls[0].scopes == (f"repository:{image.repository}:pull",)
        await puller.pull(ref, OCILayoutSink(tmp_path / "b"), credentials=bob)
        assert len([t for t in issuer.issued if t.token]) == 1

    # an identity token goes to the realm by OAuth2 POST
    issuer.issued.clear()
    result = await pull(
        ref,
        OCILayoutSink(tmp_path / "c"),
        registries=_conf(token_registry.host),
        credentials=Credentials(identity_token="rt-123"),
    )
    assert result.manifest.digest == image.manifest_digest
    assert [(t.method, t.grant_type) for t in issuer.issued] == [("POST", "refresh_token")]

    # a registry token is used as it is
    token = issuer.issue("bob", (f"repository:{image.repository}:pull",))
    issuer.issued.clear()
    result = await pull(
        ref,
        OCILayoutSink(tmp_path / "d"),
        registries=_conf(token_registry.host),
        credentials=Credentials(registry_token=token),
    )
    assert result.manifest.digest == image.manifest_digest
    assert issuer.issued == []

    with pytest.raises(AuthenticationError, match="refused"):
        await pull(
            ref,
            OCILayoutSink(tmp_path / "e"),
            registries=_conf(token_registry.host),
            credentials=Credentials(username="bob", password="nope"),
        )
    assert not (tmp_path / "e" / "blobs" / "sha256").exists() or not any(
        (tmp_path / "e" / "blobs" / "sha256").iterdir()
    )


_COMMAND = """
import sys
from ociimage import _prefetch
from ociimage.entry import run_fast
started = []
start = _prefetch.start
_prefetch.start = lambda prefetch: (started.append(prefetch), start(prefetch))
code = run_fast(sys.argv[1:])
url, answer = started[0].answer.result()
print("exit", code, "prefetched", url.rsplit("/", 1)[-1], answer is None)
"""


async def test_the_command_pulls_from_a_registry_that_challenges(
    basic_registry: LocalRegistry, tmp_path: Path
) -> None:
    """The command's prefetched manifest GET is answered 401: the client asks itself."""
    import subprocess
    import sys

    from ociimage.layout import OCILayout

    image = busybox_image()
    await _push_as_alice(basic_registry, image)
    auths = {basic_registry.host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}
    (tmp_path / "auth.json").write_text(json.dumps({"auths": auths}))
    (tmp_path / "registries.conf").write_text("")
    (tmp_path / "policy.json").write_text(
        json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
    )
    ref = image.reference(basic_registry.host)
    argv = ["pull", ref, str(tmp_path / "oci"), "--insecure-registry", basic_registry.host]
    for option, name in (
        ("--authfile", "auth.json"),
        ("--registries-conf", "registries.conf"),
        ("--policy", "policy.json"),
    ):
        argv += [option, str(tmp_path / name)]
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND, *argv], capture_output=True, text=True, timeout=120
    )
    # the prefetch asked for the manifest and got no answer to take (a 401)
    assert done.stdout.split()[-5:] == ["exit", "0", "prefetched", image.tag, "True"], done.stderr
    assert OCILayout(tmp_path / "oci").find(ref).digest == image.manifest_digest
