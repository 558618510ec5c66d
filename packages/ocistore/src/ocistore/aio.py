"""An asyncio façade over :class:`~ocistore.store.Store` for event-loop programs such as crid.

Every store operation is blocking file work (unpacking, copying, fsync, mount), so each
call here runs the synchronous method in a worker thread; the event loop never blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from ocistore.containers import Container
from ocistore.images import Image
from ocistore.sink import StorePullSink
from ocistore.store import Store
from ocistore.usage import StoreUsage, Usage
from ocistore.volumes import ImageVolume

__all__ = ["AsyncStore"]


class AsyncStore:
    """Async versions of the store's operations; ``store`` is the wrapped synchronous one."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    async def open(cls, root: str | Path, **options: Any) -> AsyncStore:
        """Open (and repair) the store in a thread; options as :meth:`Store.open`."""
        store = await asyncio.to_thread(lambda: Store.open(root, **options))
        return cls(store)

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.close()

    def pull_sink(self) -> StorePullSink:
        """The sink for ociimage (which itself calls it from worker threads)."""
        return self.store.pull_sink()

    async def list_images(self) -> list[Image]:
        return await asyncio.to_thread(self.store.list_images)

    async def image(self, ref: str) -> Image:
        return await asyncio.to_thread(self.store.image, ref)

    async def tag_image(self, ref: str, *names: str) -> Image:
        return await asyncio.to_thread(self.store.tag_image, ref, *names)

    async def remove_image(self, ref: str) -> bool:
        return await asyncio.to_thread(self.store.remove_image, ref)

    async def import_layout(
        self, layout: str | Path, *, names: Sequence[str] | None = None
    ) -> list[Image]:
        return await asyncio.to_thread(self.store.import_layout, layout, names=names)

    async def create_container(
        self, container_id: str, image: str, *, read_only: bool = False
    ) -> Container:
        return await asyncio.to_thread(
            self.store.create_container, container_id, image, read_only=read_only
        )

    async def mount_container(self, container_id: str) -> Path:
        return await asyncio.to_thread(self.store.mount_container, container_id)

    async def unmount_container(self, container_id: str) -> None:
        await asyncio.to_thread(self.store.unmount_container, container_id)

    async def remove_container(self, container_id: str) -> None:
        await asyncio.to_thread(self.store.remove_container, container_id)

    async def mount_image_volume(
        self, container_id: str, image: str, *, sub_path: str = ""
    ) -> ImageVolume:
        return await asyncio.to_thread(
            lambda: self.store.mount_image_volume(container_id, image, sub_path=sub_path)
        )

    async def image_volumes(self, container_id: str | None = None) -> list[ImageVolume]:
        return await asyncio.to_thread(self.store.image_volumes, container_id)

    async def release_image_volume(self, volume_id: str) -> None:
        await asyncio.to_thread(self.store.release_image_volume, volume_id)

    async def container_usage(self, container_id: str) -> Usage:
        return await asyncio.to_thread(self.store.container_usage, container_id)

    async def usage(self) -> StoreUsage:
        return await asyncio.to_thread(self.store.usage)

    async def gc(self, *, blob_grace: float = 3600.0) -> tuple[int, int]:
        return await asyncio.to_thread(lambda: self.store.gc(blob_grace=blob_grace))
