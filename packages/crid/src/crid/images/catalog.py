"""The image service's logic: list, inspect, pull and remove images in crid's store.

RPC handlers call one method each; nothing here knows the CRI's protobuf types.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

from crid.config import ImageConfig
from crid.images.lookup import find_image
from crid.images.pull import ImagePuller, PullOutcome, load_registries
from crid.images.record import ImageRecord, PinRule, make_record
from crid.images.usage import StorageUsage, storage_usage
from ociimage.auth import Credentials
from ocistore import AsyncStore, Image, ImageNotFoundError

__all__ = ["ImageCatalog"]

_log = logging.getLogger(__name__)


class ImageCatalog:
    """Images of one store, with the ``[crid.image]`` settings."""

    def __init__(
        self,
        store: AsyncStore,
        config: ImageConfig,
        storage_dir: Path,
        *,
        on_pull_failure: Callable[[], object] | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._storage_dir = storage_dir
        self._pins = PinRule.from_config(config.pause_image, config.pinned_images)
        self.puller = ImagePuller(store, config, on_failure=on_pull_failure)

    async def _find(self, name: str) -> Image | None:
        """The image ``name`` denotes (id, prefix, name, digest, short name) or None."""
        try:
            return await self._store.image(name)
        except ImageNotFoundError:
            pass
        registries = await asyncio.to_thread(load_registries, self._config)
        return await find_image(self._store, name, registries)

    def _records(self, images: list[Image]) -> list[ImageRecord]:
        """Records with each image's config read (blocking: in a thread)."""
        records = []
        for image in images:
            try:
                config = self._store.store.image_config(image.id)
            except ImageNotFoundError:
                continue  # removed meanwhile: it is no longer listed
            records.append(make_record(image, config, self._pins))
        return records

    async def list(self, name: str = "") -> list[ImageRecord]:
        """Every image, oldest first; with ``name``, only the image it denotes."""
        if name:
            image = await self._find(name)
            images = [image] if image is not None else []
        else:
            images = await self._store.list_images()
        return await asyncio.to_thread(self._records, images)

    async def status(self, name: str) -> ImageRecord | None:
        """The image ``name`` denotes, None when there is none (not an error in the CRI)."""
        records = await self.list(name) if name else []
        return records[0] if records else None

    async def pull(
        self, name: str, *, credentials: Credentials | None = None, platform: str = ""
    ) -> PullOutcome:
        """Pull ``name`` (see :class:`~crid.images.pull.ImagePuller`)."""
        return await self.puller.pull(name, credentials=credentials, platform=platform)

    async def remove(self, name: str) -> bool:
        """Remove the image ``name`` denotes with all its names; False when there is none.

        Refused with ocistore's ``ImageInUseError`` while a container uses the image.
        """
        image = await self._find(name)
        if image is None:
            return False
        try:
            await self._store.remove_image(image.id)  # by id: every tag goes with it
        except ImageNotFoundError:
            return False  # removed by a concurrent call: the CRI calls that success
        _log.info("image removed", extra={"image": name, "id": image.id})
        return True

    async def usage(self) -> StorageUsage:
        """Bytes and inodes used by images and by containers' writable layers."""
        return await storage_usage(self._store, self._storage_dir)


def verbose_info(record: ImageRecord) -> dict[str, str]:
    """``ImageStatus`` verbose info: one JSON document under ``info``, as CRI-O's."""
    image = record.image
    doc = {
        "id": image.id,
        "repoTags": list(image.names),
        "repoDigests": list(image.repo_digests),
        "manifestDigest": image.manifest_digest,
        "manifestMediaType": image.manifest_media_type,
        "indexDigest": image.index_digest or "",
        "layers": list(image.layers),
        "size": image.size,
        "created": image.created,
        "pinned": record.pinned,
        "imageSpec": record.config.to_dict(),
    }
    return {"info": json.dumps(doc)}
