"""ociimage.client: schema 1 refusal, digest pinning, cross-repository mounts, referrers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ociimage.client import RegistryClient
from ociimage.errors import DigestMismatchError, UnsupportedManifestError
from ociimage.testing import DOCKER_REGISTRY, LocalRegistry, TestImages
from ociimage.testing.faults import Fault, FaultyProxy
from ocispec.image import Descriptor, MediaType

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY)


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultyProxy]:
    with FaultyProxy(registry.url) as p:
        yield p


def _blob(data: bytes) -> Descriptor:
    return Descriptor.from_bytes("application/octet-stream", data)


async def test_cross_repository_mount(registry: LocalRegistry, proxy: FaultyProxy) -> None:
    data = b"mount me" * 100
    desc = _blob(data)
    async with RegistryClient(proxy.host, insecure=True) as client:
        await client.push_blob("mount/source", data, desc)
        proxy.clear()
        await client.push_blob("mount/target", data, desc, mount_from="mount/source")
        assert await client.blob_exists("mount/target", desc.digest)
    posts = [r for r in proxy.requests if r.method == "POST"]
    assert posts and f"mount={desc.digest}" in posts[0].path
    assert not [r for r in proxy.requests if r.method in ("PUT", "PATCH")]  # no upload


async def test_pinned_digest_is_verified(proxy: FaultyProxy, test_images: TestImages) -> None:
    image = test_images.busybox
    async with RegistryClient(proxy.host, insecure=True) as client:
        fetched = await client.get_manifest(image.repository, image.manifest_digest)
        assert fetched.digest == image.manifest_digest
        # the registry answers with other bytes than the digest asked for
        proxy.add(Fault(path="/manifests/", method="GET", corrupt=True))
        with pytest.raises(DigestMismatchError, match="received bytes hash"):
            await client.get_manifest(image.repository, image.manifest_digest)


async def test_schema1_is_refused_clearly(registry: LocalRegistry) -> None:
    schema1 = json.dumps(
        {
            "schemaVersion": 1,
            "name": "legacy/app",
            "tag": "v1",
            "architecture": "amd64",
            "fsLayers": [],
            "history": [],
        }
    ).encode()
    # docker-registry 2.8 no longer accepts schema 1 pushes; serve one through the proxy
    with FaultyProxy(registry.url) as proxy:
        async with RegistryClient(proxy.host, insecure=True) as client:
            proxy.upstream.close()
            import httpx

            def answer(request: httpx.Request) -> httpx.Response:
                return httpx.Response(
                    200,
                    content=schema1,
                    headers={"Content-Type": MediaType.DOCKER_SCHEMA1_SIGNED_MANIFEST},
                )

            proxy.upstream = httpx.Client(
                base_url=registry.url, transport=httpx.MockTransport(answer)
            )
            with pytest.raises(UnsupportedManifestError, match="schema 1"):
                await client.get_manifest("legacy/app", "v1")


async def test_referrers_tag_fallback(registry: LocalRegistry, test_images: TestImages) -> None:
    image = test_images.user_env
    repo = image.repository
    empty = b"{}"
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MediaType.IMAGE_MANIFEST,
            "artifactType": "application/vnd.crid.test.sbom",
            "config": {"mediaType": MediaType.EMPTY_JSON, "digest": _blob(empty).digest, "size": 2},
            "layers": [
                {"mediaType": MediaType.EMPTY_JSON, "digest": _blob(empty).digest, "size": 2}
            ],
            "subject": {
                "mediaType": MediaType.IMAGE_MANIFEST,
                "digest": image.manifest_digest,
                "size": len(image.image.manifest.data),
            },
        }
    ).encode()
    artifact_desc = Descriptor(
        media_type=MediaType.IMAGE_MANIFEST,
        digest=Descriptor.from_bytes(MediaType.IMAGE_MANIFEST, artifact).digest,
        size=len(artifact),
        artifact_type="application/vnd.crid.test.sbom",
    )
    async with RegistryClient(registry.host, insecure=True) as client:
        assert await client.referrers(repo, image.manifest_digest) == []
        await client.push_blob(repo, empty, _blob(empty))
        await client.push_manifest(repo, artifact_desc.digest, artifact, MediaType.IMAGE_MANIFEST)
        fallback = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MediaType.IMAGE_INDEX,
                "manifests": [artifact_desc.to_dict()],
            }
        ).encode()
        tag = image.manifest_digest.replace(":", "-")
        await client.push_manifest(repo, tag, fallback, MediaType.IMAGE_INDEX)
        found = await client.referrers(repo, image.manifest_digest)
    assert [d.digest for d in found] == [artifact_desc.digest]
    assert found[0].artifact_type == "application/vnd.crid.test.sbom"
