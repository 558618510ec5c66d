"""PullImage with registry credentials and signature policies, on a real daemon."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from ociimage import Credentials, RegistryClient
from ociimage.testing import (
    BuiltImage,
    LocalRegistry,
    PushedImage,
    TestImages,
    busybox_image,
    push_image,
)
from ociimage.testing.tokens import TokenIssuer
from ocispec.image import Descriptor

from ._images_support import image_config, image_service, pull, spec

pytestmark = pytest.mark.root

USER, PASSWORD = "alice", "s3cret"


@pytest.fixture(scope="module")
def private() -> Iterator[tuple[LocalRegistry, PushedImage]]:
    """A registry with htpasswd Basic auth holding busybox."""
    with LocalRegistry(htpasswd=(USER, PASSWORD)) as local:
        yield local, push_image(local, busybox_image())


@pytest.fixture(scope="module")
def token_protected() -> Iterator[tuple[TokenIssuer, LocalRegistry, BuiltImage]]:
    """A registry trusting a Bearer token issuer (user bob, refresh token rt-1), with busybox."""
    with (
        TokenIssuer(users={"bob": "hunter2"}, refresh_tokens={"rt-1": "bob"}) as issuer,
        LocalRegistry(auth=issuer.registry_auth()) as local,
    ):
        yield issuer, local, busybox_image()


async def push_with_token(local: LocalRegistry, image: BuiltImage) -> None:
    bob = Credentials(username="bob", password="hunter2")
    async with RegistryClient(local.host, insecure=True, credentials=bob) as client:
        for blob in (image.config, *image.layers):
            desc = Descriptor(
                media_type="application/octet-stream", digest=blob.digest, size=len(blob.data)
            )
            await client.push_blob(image.repository, blob.data, desc)
        await client.push_manifest(
            image.repository, image.tag, image.manifest.data, image.manifest.media_type
        )


def request(name: str, **auth: str) -> api_pb2.PullImageRequest:
    return api_pb2.PullImageRequest(image=spec(name), auth=api_pb2.AuthConfig(**auth))


async def test_auth_required_wrong_and_given_in_the_request(
    tmp_path: Path, private: tuple[LocalRegistry, PushedImage]
) -> None:
    local, pushed = private
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    async with image_service(image_config(tmp_path, [local.host])) as stub:
        for auth in ({}, {"username": USER, "password": "wrong"}):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.PullImage(request(pushed.reference, **auth))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, auth
        reply = await stub.PullImage(request(pushed.reference, username=USER, password=PASSWORD))
        assert reply.image_ref == pushed.config_digest
        reply = await stub.PullImage(
            request(pushed.reference, auth=encoded, server_address=local.host)
        )
        assert reply.image_ref == pushed.config_digest


async def test_identity_and_registry_tokens_from_the_request(
    tmp_path: Path, token_protected: tuple[TokenIssuer, LocalRegistry, BuiltImage]
) -> None:
    issuer, local, image = token_protected
    await push_with_token(local, image)
    name = image.reference(local.host)
    async with image_service(image_config(tmp_path, [local.host])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.PullImage(request(name))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        issuer.issued.clear()
        reply = await stub.PullImage(request(name, identity_token="rt-1"))
        assert reply.image_ref == image.config_digest
        assert [(t.method, t.grant_type) for t in issuer.issued] == [("POST", "refresh_token")]
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(name)))
        token = issuer.issue("bob", (f"repository:{image.repository}:pull",))
        issuer.issued.clear()
        reply = await stub.PullImage(request(name, registry_token=token))
        assert reply.image_ref == image.config_digest
        assert issuer.issued == []  # used as given, never exchanged


async def test_auth_from_the_global_auth_file(
    tmp_path: Path, private: tuple[LocalRegistry, PushedImage]
) -> None:
    local, pushed = private
    auth_file = tmp_path / "auth.json"
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    auth_file.write_text(json.dumps({"auths": {local.host: {"auth": encoded}}}))
    async with image_service(image_config(tmp_path, [local.host], auth_file=auth_file)) as stub:
        assert await pull(stub, pushed.reference) == pushed.config_digest


async def test_default_reject_policy_names_image_scope_and_requirement(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    config = image_config(tmp_path, [registry.host], policy={"default": [{"type": "reject"}]})
    async with image_service(config) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, busybox.reference)
        images = (await stub.ListImages(api_pb2.ListImagesRequest())).images
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    details = info.value.details() or ""
    assert busybox.reference in details
    assert "scope default" in details
    assert "requirement reject" in details
    assert list(images) == []
    assert list((tmp_path / "root" / "storage" / "layers").iterdir()) == []


async def test_repository_scoped_rejection_leaves_other_images_pullable(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox, layered = test_images.busybox, test_images.layered
    scope = f"{registry.host}/{busybox.repository}"
    policy = {
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {scope: [{"type": "reject"}]}},
    }
    async with image_service(image_config(tmp_path, [registry.host], policy=policy)) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, busybox.reference)
        assert await pull(stub, layered.reference) == layered.config_digest
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"scope {scope}" in (info.value.details() or "")


async def test_policy_file_is_read_at_each_pull(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    config = image_config(tmp_path, [registry.host], policy={"default": [{"type": "reject"}]})
    async with image_service(config) as stub:
        with pytest.raises(grpc.aio.AioRpcError):
            await pull(stub, busybox.reference)
        Path(config.crid.image.signature_policy).write_text(
            json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
        )
        assert await pull(stub, busybox.reference) == busybox.config_digest


async def test_missing_policy_file_fails_closed(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    config = image_config(tmp_path, [registry.host])
    Path(config.crid.image.signature_policy).unlink()
    async with image_service(config) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, test_images.busybox.reference)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "policy" in (info.value.details() or "")


async def test_blocked_registry_is_refused(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    config = image_config(tmp_path, [])
    Path(config.crid.image.registries_conf).write_text(
        f'[[registry]]\nlocation = "{registry.host}"\nblocked = true\n'
    )
    async with image_service(config) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, test_images.busybox.reference)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "blocked" in (info.value.details() or "")


@pytest.mark.binaries("gpg", "gpgconf", "/usr/bin/gpgv", "skopeo")
async def test_signed_by_checks_the_platform_manifest_not_the_index(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    """As CRI-O (containers/image): the pulled instance's signature counts, not the index's."""
    from ociimage.testing import multiplatform_index, push_index
    from ociimage.testing.gpg import GpgKeyring, store_lookaside
    from ociimage.testing.images import busybox_arch

    keyring = GpgKeyring.create(tmp_path / "gnupg", "signer@crid.test")
    try:
        (tmp_path / "signer.asc").write_bytes(keyring.export("signer@crid.test", armor=True))
        lookaside = tmp_path / "lookaside"
        pushed = {}
        for repo in ("trust/platform-signed", "trust/index-signed"):
            index = push_index(registry, multiplatform_index(repository=repo, tag="v1"))
            ref = index.reference
            platform = index.index.for_platform(busybox_arch())
            signed = platform.manifest if repo.endswith("platform-signed") else index.index.index
            signature = keyring.sign_manifest(signed.data, ref, "signer@crid.test")
            store_lookaside(lookaside, repo, signed.digest, 1, signature)
            pushed[repo] = (ref, platform.config_digest)
    finally:
        keyring.close()
    policy = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                registry.host: [
                    {
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": str(tmp_path / "signer.asc"),
                    }
                ]
            }
        },
    }
    config = image_config(tmp_path, [registry.host], policy=policy)
    registries_d = Path(config.crid.image.registries_d)
    registries_d.mkdir(exist_ok=True)
    (registries_d / "default.yaml").write_text(
        f"default-docker:\n  lookaside: file://{lookaside}\n"
    )
    async with image_service(config) as stub:
        ref, config_digest = pushed["trust/platform-signed"]
        assert await pull(stub, ref) == config_digest
        ref, _ = pushed["trust/index-signed"]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, ref)
        images = (await stub.ListImages(api_pb2.ListImagesRequest())).images
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "no signatures in the lookaside" in (info.value.details() or "")
    assert [i.id for i in images] == [pushed["trust/platform-signed"][1]]
