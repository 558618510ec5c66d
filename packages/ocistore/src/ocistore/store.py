"""The store: one locked directory holding blobs, layers, images and container filesystems."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Literal

from ocispec.errors import SpecError
from ocispec.image import Descriptor, ImageConfig, Manifest, is_manifest
from ocistore._db import Database
from ocistore._lock import DirectoryLock
from ocistore._rwlock import SharedLock
from ocistore._unpack_types import UnpackOptions
from ocistore.blobs import BlobStore, BlobWriter
from ocistore.containers import Container, ContainerStore, Driver, probe_overlay
from ocistore.errors import ImageInUseError, LayerError, StoreError
from ocistore.images import Image, ImageIndex, repository_of
from ocistore.layers import Layer, LayerStore, chain_ids
from ocistore.layout import export_image, import_layout
from ocistore.repair import RepairReport, repair
from ocistore.sink import StorePullSink
from ocistore.usage import StoreUsage, Usage, measure
from ocistore.volumes import ImageVolume, ImageVolumeStore

__all__ = ["Store"]

log = logging.getLogger(__name__)


class Store:
    """A store directory, locked for this process while open.

    Open with :meth:`Store.open` (or as a context manager); start-up repairs whatever
    a crash left half-done (see :attr:`repair_report`). ``driver`` picks overlay or
    vfs root filesystems; ``auto`` probes overlay once and falls back to vfs with a
    warning. Every method is synchronous and thread-safe; call them from
    worker threads (``asyncio.to_thread``) in async programs.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        lock_timeout: float = 30.0,
        unpack_options: UnpackOptions | None = None,
        durable: bool = True,
        workers: int | None = None,
        driver: Driver | Literal["auto"] = "auto",
    ) -> None:
        self.root = Path(root).resolve()
        # Only root may enter the store: layers hold setuid binaries and device nodes
        # that an image created, and container root filesystems what a tenant wrote
        # (containers-storage keeps its directories 0700 for the same reason).
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)
        for sub in ("blobs", "layers", "links", "tmp", "trash", "containers"):
            (self.root / sub).mkdir(exist_ok=True, mode=0o700)
            (self.root / sub).chmod(0o700)
        self._lock = DirectoryLock(str(self.root / "lock"))
        self._lock.acquire(lock_timeout)
        try:
            self._db = Database(str(self.root / "store.db"))
        except BaseException:
            self._lock.release()
            raise
        try:
            self.repair_report: RepairReport = repair(self.root, self._db)
            self.blobs = BlobStore(self.root / "blobs", self.root / "tmp")
            self.layers = LayerStore(self.root, self._db, self.blobs, durable=durable)
            self.images = ImageIndex(self._db)
            if driver == "auto":
                driver = "overlay" if probe_overlay(self.root / "tmp") else "vfs"
            self.containers = ContainerStore(self.root, self._db, self.images, self.layers, driver)
            self.volumes = ImageVolumeStore(self._db, self.images, self.layers, self.containers)
        except BaseException:
            self._db.close()
            self._lock.release()
            raise
        self.unpack_options = unpack_options or UnpackOptions()
        # Unpacking waits on file creation more than on the CPU: more threads than cores pay.
        self._workers = workers or max(8, 2 * (os.cpu_count() or 1))
        self._gate = SharedLock()
        # Blobs a pull holds (downloading, or found present and not yet part of an
        # image): GC never deletes them, whatever their age (see ``hold_blob``).
        self._held: Counter[str] = Counter()
        self._held_lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        lock_timeout: float = 30.0,
        unpack_options: UnpackOptions | None = None,
        durable: bool = True,
        workers: int | None = None,
        driver: Driver | Literal["auto"] = "auto",
    ) -> Store:
        """Open (creating if needed) and repair the store at ``root``.

        ``lock_timeout``: seconds to wait for another process's lock before
        :class:`StoreLockedError`. ``durable``: syncfs each layer before recording it
        (off only for tests). ``workers``: parallel layer unpacks (default 8 or twice the
        cores: unpacking mostly waits for file creation). ``unpack_options``: limits, id
        maps and device policy for every layer.
        """
        return cls(
            root,
            lock_timeout=lock_timeout,
            unpack_options=unpack_options,
            durable=durable,
            workers=workers,
            driver=driver,
        )

    def close(self) -> None:
        """Release the database and the directory lock; mounts stay as they are."""
        if not self._closed:
            self._closed = True
            self.containers.close()
            self._db.close()
            self._lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    # -- blobs and the pull sink ------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """Whether blob ``digest`` is stored (it was verified when written)."""
        return self.blobs.has(digest)

    def open_blob(self, descriptor: Descriptor) -> BlobWriter:
        """A writer for one blob; nothing is visible until its ``commit`` verified it."""
        return self.blobs.writer(descriptor)

    def hold_blob(self, digest: str) -> None:
        """Keep blob ``digest`` from GC until :meth:`release_blobs` (counted per call).

        A pull holds each blob before it checks or writes it, so a GC running meanwhile
        cannot delete a blob that the pull has decided to reuse.
        """
        with self._held_lock:
            self._held[digest] += 1

    def release_blobs(self, digests: Iterable[str]) -> None:
        """Undo one :meth:`hold_blob` per digest listed."""
        with self._held_lock:
            for digest in digests:
                self._held[digest] -= 1
                if self._held[digest] <= 0:
                    del self._held[digest]

    def pull_sink(self) -> StorePullSink:
        """An object implementing ociimage's ``PullSink`` protocol for this store."""
        return StorePullSink(self)

    def _read_json_blob(self, descriptor: Descriptor) -> bytes:
        data = self.blobs.read(descriptor.digest)
        if len(data) != descriptor.size:
            raise StoreError(
                f"blob {descriptor.digest} has {len(data)} bytes, not {descriptor.size}"
            )
        return data

    def commit_image(
        self, *, manifest: Descriptor, names: Sequence[str] = (), index: Descriptor | None = None
    ) -> Image:
        """Unpack an image whose blobs are all stored, then record it in one transaction.

        ``names`` are tags (``host/repo:tag``), moved here from any image that had them,
        or digest references (``host/repo@sha256:...``) kept as repo digests.
        """
        if not is_manifest(manifest.media_type):
            raise StoreError(f"{manifest.media_type!r} is not an image manifest")
        try:
            doc = Manifest.from_json(self._read_json_blob(manifest))
            config = ImageConfig.from_json(self._read_json_blob(doc.config))
        except SpecError as err:
            raise StoreError(f"image {manifest.digest}: unreadable manifest or config") from err
        diff_ids = list(config.rootfs.diff_ids)
        if len(diff_ids) != len(doc.layers):
            raise LayerError(
                f"manifest lists {len(doc.layers)} layers, the config {len(diff_ids)} diff_ids"
            )
        chains = chain_ids(diff_ids)
        with self._gate.shared():
            layers = self._unpack_all(doc.layers, diff_ids, chains)
            # every blob the record names is on disk before the record (their data was
            # fsynced at commit; this makes their renames durable, one fsync for all)
            blobs = [manifest.digest, doc.config.digest, *(b.digest for b in doc.layers)]
            self.blobs.sync_dirs(blobs + ([index.digest] if index is not None else []))
            tags = [n for n in names if "@" not in n]
            pinned = index.digest if index is not None else manifest.digest
            repo_digests = {n for n in names if "@" in n}
            repo_digests |= {f"{repository_of(n)}@{pinned}" for n in tags}
            with self._db.transaction() as tx:
                self.images.record(
                    tx,
                    image_id=doc.config.digest,
                    manifest_digest=manifest.digest,
                    manifest_media_type=manifest.media_type,
                    index_digest=index.digest if index is not None else None,
                    layers=chains,
                    size=sum(layer.size for layer in layers),
                    created=config.created,
                    names=tags,
                    repo_digests=sorted(repo_digests),
                )
        log.info("committed image id=%s names=%s layers=%d", doc.config.digest, tags, len(chains))
        return self.images.get(doc.config.digest)

    def _unpack_all(
        self, blobs: Sequence[Descriptor], diff_ids: Sequence[str], chains: Sequence[str]
    ) -> list[Layer]:
        """Each layer unpacks into its own directory, so independent ones go in parallel."""
        started = time.monotonic()

        def one(i: int) -> Layer:
            return self.layers.ensure(
                chain_id=chains[i],
                parent=chains[i - 1] if i else None,
                diff_id=diff_ids[i],
                blob=blobs[i],
                options=self.unpack_options,
            )

        if len(blobs) <= 1:
            layers = [one(i) for i in range(len(blobs))]
        else:
            with ThreadPoolExecutor(min(self._workers, len(blobs)), "ocistore-unpack") as pool:
                layers = list(pool.map(one, range(len(blobs))))
        log.debug("layers ready count=%d seconds=%.3f", len(layers), time.monotonic() - started)
        return layers

    # -- images -------------------------------------------------------------------------

    def list_images(self) -> list[Image]:
        """Every image, oldest first."""
        return self.images.list()

    def image(self, ref: str) -> Image:
        """The image named by id, id prefix, name, repo digest or manifest digest."""
        return self.images.get(ref)

    def image_manifest(self, ref: str) -> Manifest:
        return Manifest.from_json(self.blobs.read(self.image(ref).manifest_digest))

    def image_config(self, ref: str) -> ImageConfig:
        return ImageConfig.from_json(self.blobs.read(self.image(ref).id))

    def tag_image(self, ref: str, *names: str) -> Image:
        """Give the image more names, moving each tag from whichever image had it.

        Digest references (``repo@sha256:...``) are recorded as repo digests: how a
        by-digest pull, whose sink got no names, still records where it came from.
        """
        image_id = self.images.resolve(ref)
        with self._db.transaction() as tx:
            self.images.add_names(tx, image_id, [n for n in names if "@" not in n])
            tx.executemany(
                "INSERT OR IGNORE INTO repo_digests (repo_digest, image_id) VALUES (?, ?)",
                [(n, image_id) for n in names if "@" in n],
            )
        return self.images.get(image_id)

    def remove_image(self, ref: str) -> bool:
        """Remove a name, or the whole image when ``ref`` is its last name or its id.

        Returns True when the image itself was removed. Refused with
        :class:`ImageInUseError` while a container root filesystem or an image volume
        uses the image.
        """
        with self._gate.exclusive():
            image_id = self.images.resolve(ref)
            image = self.images.get(image_id)
            with self._db.transaction() as tx:
                if ref in image.names and len(image.names) > 1:
                    tx.execute("DELETE FROM names WHERE name = ?", (ref,))
                    log.info("untagged image id=%s name=%s", image_id, ref)
                    return False
                users = tx.execute(
                    "SELECT id FROM containers WHERE image_id = ?", (image_id,)
                ).fetchall()
                if users:
                    raise ImageInUseError(
                        f"image {image_id} is used by container(s) "
                        + ", ".join(r[0] for r in users)
                    )
                mounted = tx.execute(
                    "SELECT DISTINCT container_id FROM image_volumes WHERE image_id = ?",
                    (image_id,),
                ).fetchall()
                if mounted:
                    raise ImageInUseError(
                        f"image {image_id} is mounted as an image volume by container(s) "
                        + ", ".join(r[0] for r in mounted)
                    )
                tx.execute("DELETE FROM images WHERE id = ?", (image_id,))
            self.layers.delete_unreferenced(image.layers)
            self._delete_unreferenced_blobs(grace=None, only=self._image_blobs(image))
        log.info("removed image id=%s", image_id)
        return True

    def _image_blobs(self, image: Image) -> set[str]:
        blobs = {image.manifest_digest, image.id}
        try:
            doc = Manifest.from_json(self.blobs.read(image.manifest_digest))
            blobs |= {layer.digest for layer in doc.layers}
        except (StoreError, SpecError):
            pass
        if image.index_digest:
            blobs.add(image.index_digest)
        return blobs

    def _referenced_blobs(self) -> set[str]:
        used: set[str] = set()
        for image in self.images.list():
            used |= self._image_blobs(image)
        used |= {layer.blob for layer in self.layers.all()}
        return used

    def _delete_unreferenced_blobs(self, *, grace: float | None, only: set[str] | None) -> int:
        used = self._referenced_blobs()
        now = time.time()
        removed = 0
        for digest in list(only if only is not None else self.blobs.digests()):
            if digest in used or not self.blobs.has(digest):
                continue
            if grace is not None and now - self.blobs.path(digest).stat().st_mtime < grace:
                continue
            with self._held_lock:  # a pull that holds it first keeps it
                if self._held.get(digest):
                    continue
                self.blobs.delete(digest)
            removed += 1
        return removed

    def gc(self, *, blob_grace: float = 3600.0) -> tuple[int, int]:
        """Delete layers no image uses and blobs nothing references.

        Blobs a pull sink of this store holds are always kept. Blobs younger than
        ``blob_grace`` seconds are kept too, for writers that hold nothing (``0``: no
        grace, right when every writer goes through :meth:`pull_sink`).
        Returns (layers removed, blobs removed).
        """
        with self._gate.exclusive():
            layers = self.layers.delete_unreferenced()
            blobs = self._delete_unreferenced_blobs(grace=blob_grace, only=None)
        log.info("gc removed layers=%d blobs=%d", len(layers), blobs)
        return len(layers), blobs

    def import_layout(
        self,
        layout: str | Path,
        *,
        names: Sequence[str] | None = None,
        platform: str | None = None,
    ) -> list[Image]:
        """Import the images an OCI layout directory lists (see :mod:`ocistore.layout`)."""
        return import_layout(self, layout, names=names, platform=platform)

    def export_image(self, ref: str, layout: str | Path, *, name: str | None = None) -> None:
        """Write an image into an OCI layout directory, created or extended."""
        export_image(self, ref, layout, name=name)

    # -- containers ---------------------------------------------------------------------

    def create_container(
        self, container_id: str, image: str, *, read_only: bool = False
    ) -> Container:
        """Create a container's root filesystem from ``image`` (any image reference)."""
        with self._gate.shared():
            return self.containers.create(container_id, image, read_only=read_only)

    def container(self, container_id: str) -> Container:
        return self.containers.get(container_id)

    def list_containers(self) -> list[Container]:
        return self.containers.all()

    def mount_container(self, container_id: str) -> Path:
        """Mount the container's root filesystem (idempotent); returns its path."""
        return self.containers.mount(container_id)

    def unmount_container(self, container_id: str) -> None:
        """Unmount it (idempotent); its writes stay until :meth:`remove_container`."""
        self.containers.unmount(container_id)

    def remove_container(self, container_id: str) -> None:
        """Unmount and delete the container's root filesystem, image volumes and writes."""
        self.containers.get(container_id)
        self.volumes.release_all(container_id)
        self.containers.remove(container_id)

    # -- image volumes ------------------------------------------------------------------

    def mount_image_volume(
        self, container_id: str, image: str, *, sub_path: str = ""
    ) -> ImageVolume:
        """Mount ``image`` read-only for container ``container_id`` to bind as a volume.

        ``sub_path`` (relative, no ``..``) picks a directory or file of the image; links
        are followed inside the image only. The volume belongs to the container: it is
        released by :meth:`remove_container`, and the image cannot be removed meanwhile.
        Raises :class:`SubPathNotFoundError` or :class:`SubPathError` for a bad sub path.
        """
        with self._gate.shared():
            return self.volumes.mount(container_id, image, sub_path)

    def image_volumes(self, container_id: str | None = None) -> list[ImageVolume]:
        """The image volumes of one container, or of all when None."""
        return self.volumes.list(container_id)

    def release_image_volume(self, volume_id: str) -> None:
        """Unmount and delete one image volume before its container goes (idempotent)."""
        self.volumes.release(volume_id)

    # -- usage --------------------------------------------------------------------------

    def container_usage(self, container_id: str) -> Usage:
        """Bytes and inodes the container's writable layer uses."""
        c = self.containers.get(container_id)
        return measure(c.path / "upper" if c.driver == "overlay" else c.rootfs)

    def usage(self) -> StoreUsage:
        """Bytes and inodes of images (blobs, layers) and of containers' writable layers."""
        seen: set[tuple[int, int]] = set()
        images = measure(self.root / "blobs", seen=seen) + measure(self.root / "layers", seen=seen)
        per = {c.id: self.container_usage(c.id) for c in self.containers.all()}
        total = Usage()
        for u in per.values():
            total = total + u
        return StoreUsage(images=images, containers=total, per_container=per)
