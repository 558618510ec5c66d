"""PullImage against a real loopback registry: tags, digests, platforms, sharing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.images import ImagePuller
from crid.metrics import REGISTRY
from ociimage.testing import LocalRegistry, TestImages
from ociimage.testing.faults import Fault, FaultyProxy
from ocistore import AsyncStore

from ._images_support import image_config, image_service, pull, spec, status

pytestmark = pytest.mark.root


async def test_pull_by_tag_returns_the_image_id_and_records_tag_and_digest(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    pulls_before = REGISTRY.get_sample_value("crid_image_pulls_total") or 0.0
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        image_ref = await pull(stub, busybox.reference)
        assert image_ref == busybox.config_digest  # the image id, as CRI-O returns
        image = (await status(stub, busybox.reference)).image
    pulls_after = REGISTRY.get_sample_value("crid_image_pulls_total")
    assert pulls_after == pulls_before + 1  # the pull is in crid's metrics
    assert image.id == busybox.config_digest
    assert list(image.repo_tags) == [busybox.reference]
    assert list(image.repo_digests) == [busybox.digest_reference]
    assert image.size > 0
    assert image.uid.value == 0  # busybox has no User: root
    assert image.username == ""
    assert (tmp_path / "root" / "storage" / "blobs" / "sha256").is_dir()


async def test_pull_by_digest_records_the_repo_digest_and_no_tag(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    layered = test_images.layered
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        image_ref = await pull(stub, layered.digest_reference)
        image = (await status(stub, layered.digest_reference)).image
    assert image_ref == layered.config_digest
    assert list(image.repo_tags) == []
    assert list(image.repo_digests) == [layered.digest_reference]


async def test_multiplatform_index_gives_the_host_platform_or_the_annotated_one(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    index = test_images.multiplatform
    host = index.for_platform("amd64")  # this machine (DESIGN.md: x86_64)
    arm = index.for_platform("arm64")
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        assert await pull(stub, index.reference) == host.config_digest
        image = (await status(stub, index.reference)).image
        assert list(image.repo_digests) == [f"{registry.host}/{index.repository}@{index.digest}"]
        arm_ref = await pull(
            stub, index.digest_reference, **{"crid.io/image-platform": "linux/arm64/v8"}
        )
        assert arm_ref == arm.config_digest
        info = json.loads((await status(stub, arm.config_digest)).info["info"])
    assert info["imageSpec"]["architecture"] == "arm64"
    assert info["indexDigest"] == index.digest


async def test_the_pods_annotation_picks_the_platform_too(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    index = test_images.multiplatform
    arm = index.for_platform("arm64")
    sandbox = api_pb2.PodSandboxConfig(annotations={"crid.io/image-platform": "linux/arm64"})
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        reply = await stub.PullImage(
            api_pb2.PullImageRequest(image=spec(index.reference), sandbox_config=sandbox)
        )
        assert reply.image_ref == arm.config_digest
        # the tag now names the arm64 image; pulling for the host moves it back
        assert (await status(stub, index.reference)).image.id == arm.config_digest
        host_ref = await pull(stub, index.reference)
        assert (await status(stub, index.reference)).image.id == host_ref != arm.config_digest


async def test_platform_missing_from_the_index_is_not_found(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    index = test_images.multiplatform
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, index.reference, **{"crid.io/image-platform": "linux/s390x"})
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "s390x" in (info.value.details() or "")


async def test_unknown_image_or_tag_is_not_found(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        for name in (
            f"{registry.host}/crid-test/nope:1",
            f"{registry.host}/crid-test/busybox:nope",
        ):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pull(stub, name)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND, name
            assert "nope" in (info.value.details() or "")


async def test_bad_requests_are_invalid_arguments(tmp_path: Path, registry: LocalRegistry) -> None:
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        for name in ("", "Not/Lowercase", f"{registry.host}/x@sha256:short"):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pull(stub, name)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name


async def test_unreachable_registry_is_unavailable(tmp_path: Path) -> None:
    from ociimage.testing import free_port

    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with image_service(image_config(tmp_path, [host])) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pull(stub, f"{host}/crid-test/busybox:latest")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_short_name_resolves_through_the_search_registries(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    config = image_config(tmp_path, [registry.host])
    conf = Path(config.crid.image.registries_conf)
    conf.write_text(f'unqualified-search-registries = ["{registry.host}"]\n' + conf.read_text())
    busybox = test_images.busybox
    async with image_service(config) as stub:
        assert await pull(stub, "crid-test/busybox") == busybox.config_digest
        # the short name finds the stored image too, as the kubelet asks for it
        assert (await status(stub, "crid-test/busybox")).image.id == busybox.config_digest


async def test_concurrent_pulls_of_one_image_share_one_download(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    layered = test_images.layered
    with FaultyProxy(registry.url) as proxy:
        name = f"{proxy.host}/{layered.repository}:{layered.tag}"
        config = image_config(tmp_path, [proxy.host])
        store = await AsyncStore.open(tmp_path / "storage", driver="vfs")
        try:
            puller = ImagePuller(store, config.crid.image)
            outcomes = await asyncio.gather(*(puller.pull(name) for _ in range(3)))
        finally:
            await store.close()
    assert {o.image.id for o in outcomes} == {layered.config_digest}
    fetched = [r.path for r in proxy.requests if r.method == "GET" and "/blobs/" in r.path]
    for digest in layered.layer_digests:
        assert sum(p.endswith(digest) for p in fetched) == 1, digest
    manifests = [r for r in proxy.requests if "/manifests/" in r.path]
    assert len(manifests) == 1


async def test_concurrent_pulls_of_images_sharing_a_layer_fetch_it_once(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    first, second = test_images.layered, test_images.user_env
    shared = first.layer_digests[0]
    assert shared == second.layer_digests[0]
    with FaultyProxy(registry.url) as proxy:
        # hold the shared layer's download open until both pulls want it
        proxy.add(Fault(path=f"/blobs/{shared}", method="GET", delay=1.0, times=None))
        async with image_service(image_config(tmp_path, [proxy.host])) as stub:
            refs = await asyncio.gather(
                pull(stub, f"{proxy.host}/{first.repository}:{first.tag}"),
                pull(stub, f"{proxy.host}/{second.repository}:{second.tag}"),
            )
    assert refs == [first.config_digest, second.config_digest]
    fetched = [r.path for r in proxy.requests if r.method == "GET" and r.path.endswith(shared)]
    assert len(fetched) == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_pull(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    config = image_config(tmp_path, [registry.host])
    store = await AsyncStore.open(tmp_path / "storage", driver="vfs")
    try:
        puller = ImagePuller(store, config.crid.image)
        first = asyncio.ensure_future(puller.pull(busybox.reference))
        second = asyncio.ensure_future(puller.pull(busybox.reference))
        await asyncio.sleep(0)
        first.cancel()
        outcome = await second
        assert outcome.image.id == busybox.config_digest
        assert first.cancelled()
        assert (await store.image(busybox.reference)).id == busybox.config_digest
    finally:
        await store.close()
