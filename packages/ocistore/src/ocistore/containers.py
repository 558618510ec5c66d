"""Container root filesystems: overlay mounts of an image's layers, or vfs copies.

Layout: ``containers/<id>/{upper,work,merged}`` for overlay (plus ``empty`` as a spare
lower for read-only single-layer mounts), ``containers/<id>/rootfs`` for vfs. The
directory is built in ``tmp/``, renamed into place, then recorded; the mount itself is
state of the kernel, read back from ``/proc/self/mountinfo``, never from the database.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ocistore import mounts
from ocistore._copy import copy_layers
from ocistore._db import Database
from ocistore.errors import (
    ContainerExistsError,
    ContainerNotFoundError,
    MountError,
    StoreError,
)
from ocistore.images import ImageIndex
from ocistore.layers import LayerStore

__all__ = ["Container", "ContainerStore", "Driver", "probe_overlay"]

log = logging.getLogger(__name__)

Driver = Literal["overlay", "vfs"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PAGE = 4096


@dataclass(frozen=True, kw_only=True)
class Container:
    """A container's root filesystem record; ``rootfs`` is what the runtime uses as root."""

    id: str
    image_id: str
    driver: Driver
    read_only: bool
    created: float
    path: Path
    rootfs: Path


def probe_overlay(scratch: Path) -> bool:
    """Whether overlayfs mounts here (with an upper dir), tried in ``scratch``."""
    base = scratch / f"probe-{secrets.token_hex(4)}"
    dirs = [base / d for d in ("lower", "upper", "work", "merged")]
    try:
        for d in dirs:
            d.mkdir(parents=True)
        lower, upper, work, merged = (str(d) for d in dirs)
        mounts.mount(
            "overlay", merged, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}"
        )
        mounts.umount(merged)
        return True
    except OSError as err:
        log.warning("overlay cannot be mounted here, falling back to vfs err=%s", err)
        return False
    finally:
        shutil.rmtree(base, ignore_errors=True)


class ContainerStore:
    """Creates, mounts, unmounts and removes container root filesystems."""

    def __init__(
        self, root: Path, db: Database, images: ImageIndex, layers: LayerStore, driver: Driver
    ) -> None:
        self.dir = root / "containers"
        self.tmp = root / "tmp"
        self.trash = root / "trash"
        self._db = db
        self._images = images
        self._layers = layers
        self.driver = driver
        self._dir_fd = os.open(self.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._links_fd = os.open(layers.links, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        os.close(self._dir_fd)
        os.close(self._links_fd)

    def _row(self, row: tuple[object, ...]) -> Container:
        cid, image_id, driver, read_only, created = row
        path = self.dir / str(cid)
        rootfs = path / ("merged" if driver == "overlay" else "rootfs")
        return Container(
            id=str(cid),
            image_id=str(image_id),
            driver="overlay" if driver == "overlay" else "vfs",
            read_only=bool(read_only),
            created=float(created),  # type: ignore[arg-type]
            path=path,
            rootfs=rootfs,
        )

    def get(self, container_id: str) -> Container:
        rows = self._db.query(
            "SELECT id, image_id, driver, read_only, created FROM containers WHERE id = ?",
            (container_id,),
        )
        if not rows:
            raise ContainerNotFoundError(f"container {container_id} not found")
        return self._row(rows[0])

    def all(self) -> list[Container]:
        rows = self._db.query(
            "SELECT id, image_id, driver, read_only, created FROM containers ORDER BY created"
        )
        return [self._row(r) for r in rows]

    def create(self, container_id: str, image_ref: str, *, read_only: bool) -> Container:
        """Make the container's directories (and, for vfs, its copy), then record it."""
        if not _ID.match(container_id):
            raise StoreError(f"invalid container id {container_id!r}")
        if self._db.scalar("SELECT 1 FROM containers WHERE id = ?", (container_id,)):
            raise ContainerExistsError(f"container {container_id} exists already")
        image = self._images.get(image_ref)
        work = self.tmp / f"ctr-{secrets.token_hex(8)}"
        try:
            if self.driver == "overlay":
                work.mkdir()
                # "empty" stands in for missing lower directories: only a read-only
                # container with fewer than two layers, or an image without any, needs
                # it (each mkdir costs tens of microseconds, more on a busy disk).
                subs = ["upper", "work", "merged"]
                if not image.layers or (read_only and len(image.layers) < 2):
                    subs.append("empty")
                for sub in subs:
                    (work / sub).mkdir()
            else:
                (work / "rootfs").mkdir(parents=True)
                paths = []
                for chain in image.layers:
                    layer = self._layers.get(chain)
                    if layer is None:
                        raise StoreError(f"image {image.id} lacks layer {chain}")
                    paths.append(layer.path)
                copy_layers(paths, work / "rootfs")
            final = self.dir / container_id
            if final.exists():
                raise ContainerExistsError(f"container directory {final} exists already")
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        # No fsync: losing this record in a power cut leaves a directory that repair
        # deletes, while the fsync cost milliseconds of every create, serialised by
        # the database lock (see docs/benchmarks.md, "fsyncs on the create path").
        with self._db.transaction(durable=False) as tx:
            tx.execute(
                "INSERT INTO containers (id, image_id, driver, read_only, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (container_id, image.id, self.driver, int(read_only), time.time()),
            )
        log.info("created container rootfs id=%s image=%s driver=%s", container_id, image.id,
                 self.driver)  # fmt: skip
        return self.get(container_id)

    def layer_links(self, image_id: str, owner: str) -> list[str]:
        """The image's layers as short fd-relative links, top first (overlay's order)."""
        links = []
        for chain in reversed(self._image_layers(image_id)):
            layer = self._layers.get(chain)
            if layer is None:
                raise MountError(f"layer {chain} of {owner} is missing")
            links.append(f"/proc/self/fd/{self._links_fd}/{layer.link}")
        return links

    def fd_path(self, relative: str) -> str:
        """A path under ``containers/`` through the directory's fd (shorter, rename-proof)."""
        return f"/proc/self/fd/{self._dir_fd}/{relative}"

    def overlay_options(self, container: Container) -> str:
        """The overlay mount data; short layer links keep 100+ layers within a page."""
        links = self.layer_links(container.image_id, f"container {container.id}")
        base = self.fd_path(container.id)
        if container.read_only:
            opts = read_only_overlay(links, f"{base}/empty")
        else:
            if not links:
                links.append(f"{base}/empty")
            opts = f"lowerdir={':'.join(links)},upperdir={base}/upper,workdir={base}/work"
        check_page(opts, f"container {container.id}")
        return opts

    def _image_layers(self, image_id: str) -> list[str]:
        rows = self._db.query(
            "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY position", (image_id,)
        )
        return [str(r[0]) for r in rows]

    def mount(self, container_id: str) -> Path:
        """Mount (if not yet) and return the root filesystem path."""
        container = self.get(container_id)
        if container.driver == "vfs":
            return container.rootfs
        target = str(container.rootfs)
        # A stat pair, not a read of the whole mount table (which grows with every pod
        # and costs milliseconds on each create): an overlay has its own device number.
        if os.path.ismount(target):
            return container.rootfs
        flags = mounts.MS_RDONLY if container.read_only else 0
        try:
            mounts.mount("overlay", target, "overlay", flags, self.overlay_options(container))
        except OSError as err:
            raise MountError(f"mounting container {container_id}: {err}") from err
        log.info("mounted container rootfs id=%s path=%s", container_id, target)
        return container.rootfs

    def is_mounted(self, container_id: str) -> bool:
        container = self.get(container_id)
        return container.driver == "overlay" and mounts.is_mountpoint(str(container.rootfs))

    def unmount(self, container_id: str) -> None:
        """Unmount if mounted; a busy mount is detached lazily with a warning."""
        container = self.get(container_id)
        if container.driver == "overlay":
            unmount_path(container.rootfs)

    def remove(self, container_id: str) -> None:
        """Unmount, forget and delete the container's root filesystem and writes."""
        container = self.get(container_id)
        self.unmount(container_id)
        # Lost in a power cut, the delete leaves a record whose directory is gone (or
        # in trash/): repair drops it. No fsync, as for the insert.
        with self._db.transaction(durable=False) as tx:
            tx.execute("DELETE FROM containers WHERE id = ?", (container_id,))
        discard(container.path, self.trash)
        log.info("removed container rootfs id=%s", container_id)


def read_only_overlay(links: list[str], empty: str) -> str:
    """Overlay data with lower directories only (read-only); overlay wants two or more."""
    lowers = list(links)
    while len(lowers) < 2:
        lowers.append(empty)
    return "lowerdir=" + ":".join(lowers)


def check_page(opts: str, owner: str) -> None:
    """Refuse overlay data the kernel would cut at one page."""
    if len(opts) >= PAGE:
        raise MountError(
            f"overlay options for {owner} need {len(opts)} bytes, "
            f"more than one page ({PAGE}): too many layers"
        )


def unmount_path(path: Path) -> None:
    """Unmount ``path`` if it is a mount point (detaching it lazily when busy)."""
    target = str(path)
    # umount answers EINVAL when nothing (more) is mounted there: no need to read the
    # mount table before and after, as a loop over is_mountpoint did. A symbolic link
    # is not followed (is_mountpoint compared the path itself too).
    while True:
        try:
            mounts.umount(target, mounts.UMOUNT_NOFOLLOW)
        except OSError as err:
            if err.errno in (errno.EINVAL, errno.ENOENT):
                return
            if err.errno != errno.EBUSY:
                raise MountError(f"unmounting {target}: {err}") from err
            log.warning("mount busy, detaching lazily path=%s", target)
            mounts.umount(target, mounts.MNT_DETACH | mounts.UMOUNT_NOFOLLOW)


def discard(path: Path, trash: Path) -> None:
    """Rename into the trash (atomic), then delete; repair finishes an interrupted delete.

    Refuses while anything is mounted below ``path``: deleting through a mounted
    overlay would delete the image's layers.
    """
    prefix = str(path) + "/"
    busy = sorted(m for m in mounts.mountpoints() if m.startswith(prefix))
    if busy:
        raise MountError(f"cannot delete {path}: still mounted at {', '.join(busy)}")
    if path.exists():
        dead = trash / secrets.token_hex(8)
        path.rename(dead)
        shutil.rmtree(dead, ignore_errors=True)
