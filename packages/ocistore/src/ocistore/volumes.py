"""Image volumes: an image's file system mounted read-only for a container to bind.

A volume belongs to a container root filesystem and lives inside its directory,
``containers/<id>/volumes/<volume>/{merged,empty}``: with the overlay driver ``merged``
is an overlay of the image's layers with lower directories only (so the kernel refuses
every write), with vfs it is a copy bound onto itself read-only. Both are mounted
``nosuid,nodev``. Removing the container releases its volumes; while a volume exists
its image counts as in use. Like container mounts, a volume's mount is kernel state,
read from ``/proc/self/mountinfo``.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ocistore import mounts
from ocistore._copy import copy_layers
from ocistore._db import Database
from ocistore._subpath import check_sub_path, resolve_sub_path
from ocistore.containers import (
    ContainerStore,
    check_page,
    discard,
    read_only_overlay,
    unmount_path,
)
from ocistore.errors import MountError, StoreError
from ocistore.images import ImageIndex
from ocistore.layers import LayerStore

__all__ = ["ImageVolume", "ImageVolumeStore"]

log = logging.getLogger(__name__)

_FLAGS = mounts.MS_RDONLY | mounts.MS_NOSUID | mounts.MS_NODEV


@dataclass(frozen=True, kw_only=True)
class ImageVolume:
    """A mounted image volume; bind ``source`` (``path`` or the resolved sub path)."""

    id: str
    container_id: str
    image_id: str
    #: The sub path as asked ("" for the whole image).
    sub_path: str
    created: float
    #: The read-only mount of the whole image.
    path: Path
    #: What to bind into the container: ``path`` joined with the resolved sub path.
    source: Path


class ImageVolumeStore:
    """Mounts, lists and releases the image volumes of container root filesystems."""

    def __init__(
        self,
        db: Database,
        images: ImageIndex,
        layers: LayerStore,
        containers: ContainerStore,
    ) -> None:
        self._db = db
        self._images = images
        self._layers = layers
        self._containers = containers

    def _row(self, row: tuple[object, ...]) -> ImageVolume:
        vid, cid, image_id, sub_path, resolved, created = (str(v) for v in row)
        path = self._containers.dir / cid / "volumes" / vid / "merged"
        return ImageVolume(
            id=vid,
            container_id=cid,
            image_id=image_id,
            sub_path=sub_path,
            created=float(created),
            path=path,
            source=path / resolved if resolved else path,
        )

    def list(self, container_id: str | None = None) -> list[ImageVolume]:
        """The volumes of one container (every volume when None), oldest first."""
        if container_id is None:
            rows = self._db.query(
                "SELECT id, container_id, image_id, sub_path, resolved, created"
                " FROM image_volumes ORDER BY created"
            )
        else:
            rows = self._db.query(
                "SELECT id, container_id, image_id, sub_path, resolved, created"
                " FROM image_volumes WHERE container_id = ? ORDER BY created",
                (container_id,),
            )
        return [self._row(r) for r in rows]

    def find(self, volume_id: str) -> ImageVolume | None:
        rows = self._db.query(
            "SELECT id, container_id, image_id, sub_path, resolved, created"
            " FROM image_volumes WHERE id = ?",
            (volume_id,),
        )
        return self._row(rows[0]) if rows else None

    def get(self, volume_id: str) -> ImageVolume:
        found = self.find(volume_id)
        if found is None:
            raise StoreError(f"image volume {volume_id} not found")
        return found

    def mount(self, container_id: str, image_ref: str, sub_path: str = "") -> ImageVolume:
        """Mount ``image_ref`` read-only for the container and resolve ``sub_path`` in it.

        Nothing is left behind when the image, the container or the sub path is wrong.
        """
        sub_path = check_sub_path(sub_path)
        container = self._containers.get(container_id)
        image = self._images.get(image_ref)
        vid = secrets.token_hex(8)
        work = self._containers.tmp / f"vol-{vid}"
        final = container.path / "volumes" / vid
        try:
            for sub in ("merged", "empty"):
                (work / sub).mkdir(parents=True)
            final.parent.mkdir(exist_ok=True)
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO image_volumes"
                " (id, container_id, image_id, sub_path, resolved, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (vid, container_id, image.id, sub_path, "", time.time()),
            )
        try:
            merged = final / "merged"
            self._mount(container.driver, image.id, f"{container_id}/volumes/{vid}", merged)
            resolved = resolve_sub_path(merged, sub_path)
            with self._db.transaction() as tx:
                tx.execute("UPDATE image_volumes SET resolved = ? WHERE id = ?", (resolved, vid))
        except BaseException:
            self.release(vid)
            raise
        log.info("mounted image volume id=%s container=%s image=%s sub_path=%s",
                 vid, container_id, image.id, sub_path)  # fmt: skip
        return self.get(vid)

    def _mount(self, driver: str, image_id: str, relative: str, merged: Path) -> None:
        target = str(merged)
        owner = f"image volume {relative}"
        try:
            if driver == "overlay":
                links = self._containers.layer_links(image_id, owner)
                opts = read_only_overlay(links, self._containers.fd_path(f"{relative}/empty"))
                check_page(opts, owner)
                mounts.mount("overlay", target, "overlay", _FLAGS, opts)
            else:
                paths = []
                for chain in self._images.get(image_id).layers:
                    layer = self._layers.get(chain)
                    if layer is None:
                        raise MountError(f"layer {chain} of {owner} is missing")
                    paths.append(layer.path)
                copy_layers(paths, merged)
                mounts.mount(target, target, "", mounts.MS_BIND, "")
                mounts.mount("", target, "", mounts.MS_REMOUNT | mounts.MS_BIND | _FLAGS, "")
        except OSError as err:
            raise MountError(f"mounting {owner}: {err}") from err

    def release(self, volume_id: str) -> None:
        """Unmount and delete one volume (and its record); an unknown id is fine."""
        volume = self.find(volume_id)
        if volume is None:
            return
        unmount_path(volume.path)
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM image_volumes WHERE id = ?", (volume_id,))
        discard(volume.path.parent, self._containers.trash)
        log.info("released image volume id=%s container=%s", volume_id, volume.container_id)

    def release_all(self, container_id: str) -> None:
        """Release every volume of the container."""
        for volume in self.list(container_id):
            self.release(volume.id)
