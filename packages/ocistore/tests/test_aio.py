"""The asyncio façade: the same operations, run in worker threads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ocistore import AsyncStore, ImageNotFoundError
from ocistore.testing import load_built


@pytest.mark.root
async def test_async_container_lifecycle(tmp_path: Path, busybox_built: object) -> None:
    async with await AsyncStore.open(tmp_path / "s", durable=False) as store:
        await asyncio.to_thread(load_built, store.store, busybox_built, ["r/bb:1"])
        (image,) = await store.list_images()
        assert (await store.image("r/bb:1")).id == image.id
        await store.create_container("c", "r/bb:1")
        rootfs = await store.mount_container("c")
        assert (rootfs / "bin/busybox").is_file()
        (rootfs / "written").write_bytes(b"x" * 10000)
        assert (await store.container_usage("c")).bytes >= 10000
        assert (await store.usage()).images.inodes > 40
        await store.unmount_container("c")
        await store.remove_container("c")
        assert await store.remove_image("r/bb:1")
        with pytest.raises(ImageNotFoundError):
            await store.image("r/bb:1")
        assert await store.gc(blob_grace=0) == (0, 0)
