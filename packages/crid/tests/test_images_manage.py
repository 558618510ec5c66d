"""ListImages, StreamImages, ImageStatus, RemoveImage and ImageFsInfo on a real daemon."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from ociimage.testing import LocalRegistry, TestImages, build_image, busybox_image, push_image
from ociimage.testing.layers import build_layer, file

from ._images_support import image_config, image_service, pull, running, spec, status

pytestmark = pytest.mark.root


async def test_list_filter_and_stream(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox, user_env = test_images.busybox, test_images.user_env
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        assert list((await stub.ListImages(api_pb2.ListImagesRequest())).images) == []
        assert [r async for r in stub.StreamImages(api_pb2.StreamImagesRequest())] == []
        await pull(stub, busybox.reference)
        await pull(stub, user_env.reference)
        listed = (await stub.ListImages(api_pb2.ListImagesRequest())).images
        assert {i.id for i in listed} == {busybox.config_digest, user_env.config_digest}
        only = await stub.ListImages(
            api_pb2.ListImagesRequest(filter=api_pb2.ImageFilter(image=spec(user_env.reference)))
        )
        assert [i.id for i in only.images] == [user_env.config_digest]
        none = await stub.ListImages(
            api_pb2.ListImagesRequest(filter=api_pb2.ImageFilter(image=spec("sha256:" + "f" * 64)))
        )
        assert list(none.images) == []
        streamed = [r async for r in stub.StreamImages(api_pb2.StreamImagesRequest())]
        assert all(len(r.images) >= 1 for r in streamed)
        assert sorted(i.id for r in streamed for i in r.images) == sorted(i.id for i in listed)
        filtered = [
            r
            async for r in stub.StreamImages(
                api_pb2.StreamImagesRequest(
                    filter=api_pb2.ImageFilter(image=spec(busybox.reference))
                )
            )
        ]
        assert [i.id for r in filtered for i in r.images] == [busybox.config_digest]


async def test_status_by_every_name_user_and_verbose_info(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    user_env = test_images.user_env
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        await pull(stub, user_env.reference)
        names = [
            user_env.reference,
            user_env.digest_reference,
            user_env.config_digest,
            user_env.config_digest.removeprefix("sha256:")[:12],
            user_env.reference.removesuffix(":latest"),
        ]
        for name in names:
            reply = await status(stub, name)
            assert reply.image.id == user_env.config_digest, name
        image = reply.image
        assert image.uid.value == 1000  # User "1000:1000"
        assert image.username == ""
        assert image.HasField("uid")
        assert image.pinned is False
        assert image.spec.image == user_env.config_digest
        info = json.loads(reply.info["info"])
        assert info["imageSpec"]["config"]["User"] == "1000:1000"
        assert info["manifestDigest"] == user_env.manifest_digest
        quiet = await stub.ImageStatus(api_pb2.ImageStatusRequest(image=spec(user_env.reference)))
        assert dict(quiet.info) == {}


async def test_named_user_is_reported_as_username(tmp_path: Path) -> None:
    with LocalRegistry() as local:
        base = busybox_image()
        named = build_image(
            "crid-test/named-user", "1", base.layers, platform=base.platform,
            config={"User": "daemon:daemon", "Cmd": ["sh"]},
        )  # fmt: skip
        pushed = push_image(local, named)
        async with image_service(image_config(tmp_path, [local.host])) as stub:
            await pull(stub, pushed.reference)
            image = (await status(stub, pushed.reference)).image
    assert image.username == "daemon"
    assert not image.HasField("uid")


async def test_unknown_image_status_is_empty_not_an_error(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        for name in (f"{registry.host}/nope:1", "sha256:" + "a" * 64, "nope", "Bad Name!"):
            reply = await status(stub, name)
            assert not reply.HasField("image"), name
            assert dict(reply.info) == {}
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ImageStatus(api_pb2.ImageStatusRequest(image=spec("")))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_pinned_pause_image_and_globs(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox, layered, user_env = test_images.busybox, test_images.layered, test_images.user_env
    extra = (
        f'pause_image = "{busybox.reference}"\npinned_images = ["{registry.host}/crid-test/lay*"]\n'
    )
    config = image_config(tmp_path, [registry.host], extra=extra)
    async with image_service(config) as stub:
        for image in (busybox, layered, user_env):
            await pull(stub, image.reference)
        pinned = {
            i.id: i.pinned for i in (await stub.ListImages(api_pb2.ListImagesRequest())).images
        }
    assert pinned == {
        busybox.config_digest: True,
        layered.config_digest: True,
        user_env.config_digest: False,
    }


async def test_remove_by_tag_takes_every_tag_and_is_idempotent(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    async with running(image_config(tmp_path, [registry.host])) as (daemon, stub):
        await pull(stub, busybox.reference)
        assert daemon.context is not None
        store = daemon.context.store
        await store.tag_image(busybox.config_digest, f"{registry.host}/other/name:v1")
        assert len((await status(stub, busybox.reference)).image.repo_tags) == 2
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(busybox.reference)))
        assert not (await status(stub, busybox.reference)).HasField("image")
        assert not (await status(stub, f"{registry.host}/other/name:v1")).HasField("image")
        assert list((await stub.ListImages(api_pb2.ListImagesRequest())).images) == []
        # again, and an image never seen: both succeed
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(busybox.reference)))
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec("sha256:" + "b" * 64)))


async def test_remove_by_id_prefix_and_by_digest(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox, layered = test_images.busybox, test_images.layered
    async with image_service(image_config(tmp_path, [registry.host])) as stub:
        await pull(stub, busybox.reference)
        await pull(stub, layered.reference)
        prefix = busybox.config_digest.removeprefix("sha256:")[:10]
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(prefix)))
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(layered.digest_reference)))
        assert list((await stub.ListImages(api_pb2.ListImagesRequest())).images) == []


async def test_remove_is_refused_while_a_container_uses_the_image(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    async with running(image_config(tmp_path, [registry.host])) as (daemon, stub):
        await pull(stub, busybox.reference)
        assert daemon.context is not None
        store = daemon.context.store
        await store.create_container("c" * 64, busybox.config_digest)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(busybox.reference)))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "c" * 64 in (info.value.details() or "")
        assert (await status(stub, busybox.reference)).image.id == busybox.config_digest
        await store.remove_container("c" * 64)
        await stub.RemoveImage(api_pb2.RemoveImageRequest(image=spec(busybox.reference)))
        assert not (await status(stub, busybox.reference)).HasField("image")


async def test_image_fs_info_grows_with_pulls_and_container_writes(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    layered = test_images.layered
    async with running(image_config(tmp_path, [registry.host])) as (daemon, stub):
        before = await stub.ImageFsInfo(api_pb2.ImageFsInfoRequest())
        await pull(stub, layered.reference)
        after = await stub.ImageFsInfo(api_pb2.ImageFsInfoRequest())
        assert daemon.context is not None
        store = daemon.context.store
        await store.create_container("d" * 64, layered.config_digest)
        rootfs = await store.mount_container("d" * 64)
        try:
            (rootfs / "written.bin").write_bytes(b"x" * 1_000_000)
            written = await stub.ImageFsInfo(api_pb2.ImageFsInfoRequest())
        finally:
            await store.unmount_container("d" * 64)
            await store.remove_container("d" * 64)
    storage = str(tmp_path / "root" / "storage")
    (image_fs,) = before.image_filesystems
    assert image_fs.fs_id.mountpoint == storage
    assert image_fs.timestamp > 0
    (grown,) = after.image_filesystems
    assert (
        grown.used_bytes.value
        > image_fs.used_bytes.value + sum(layer.size for layer in layered.image.layers) // 2
    )
    assert grown.inodes_used.value > image_fs.inodes_used.value + 10
    assert grown.timestamp >= image_fs.timestamp
    (containers,) = written.container_filesystems
    assert containers.fs_id.mountpoint == storage
    assert (
        containers.used_bytes.value >= after.container_filesystems[0].used_bytes.value + 1_000_000
    )
    assert containers.inodes_used.value >= after.container_filesystems[0].inodes_used.value + 1


async def test_layer_content_is_unpacked(tmp_path: Path) -> None:
    with LocalRegistry() as local:
        base = busybox_image()
        extra = build_layer([file("etc/motd", "hello from crid\n")])
        image = build_image("crid-test/motd", "1", [*base.layers, extra], platform=base.platform)
        pushed = push_image(local, image)
        async with running(image_config(tmp_path, [local.host])) as (daemon, stub):
            image_id = await pull(stub, pushed.reference)
            assert daemon.context is not None
            store = daemon.context.store
            await store.create_container("e" * 64, image_id)
            try:
                rootfs = await store.mount_container("e" * 64)
                assert (rootfs / "etc" / "motd").read_text() == "hello from crid\n"
                await store.unmount_container("e" * 64)
            finally:
                await store.remove_container("e" * 64)
