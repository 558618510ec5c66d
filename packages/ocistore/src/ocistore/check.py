"""An offline check of a whole store, and its repair: what ``crid check`` runs.

Start-up repair (:mod:`ocistore.repair`) makes directories agree with the database.
A check goes further: it re-hashes every blob, so content damaged on disk is found,
and it looks for images whose manifest or config blob is gone (they cannot be
described or used for a new container). ``repair=False`` changes nothing: it opens
the database beside the store lock, never through :class:`Store`, whose opening repairs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ocispec.errors import SpecError
from ocispec.image import Manifest
from ocistore._db import Database
from ocistore._lock import DirectoryLock
from ocistore.blobs import BlobStore
from ocistore.errors import ImageInUseError, StoreError
from ocistore.repair import RepairReport, repair
from ocistore.store import Store

__all__ = ["StoreCheck", "check_store"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StoreCheck:
    """What a check found; with ``repaired``, what it fixed and what it could not."""

    repaired: bool
    half_done: RepairReport = field(default_factory=RepairReport)
    corrupt_blobs: list[str] = field(default_factory=list)
    #: image id -> the manifest or config blobs it needs and the store lacks
    broken_images: dict[str, list[str]] = field(default_factory=dict)
    #: images a repair could not remove (a container still uses them), with why
    left_alone: dict[str, str] = field(default_factory=dict)
    #: the container root filesystems the store holds (after a repair, or once repaired)
    containers: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        """Whether anything was found (repaired or not)."""
        return self.half_done.changed or bool(self.corrupt_blobs or self.broken_images)

    @property
    def clean_after(self) -> bool:
        """Whether the store is sound now: nothing found, or all of it repaired."""
        return not self.damaged or (self.repaired and not self.left_alone)


def _corrupt_blobs(blobs: BlobStore) -> list[str]:
    corrupt = []
    for digest in blobs.digests():
        try:
            if not blobs.verify(digest):
                corrupt.append(digest)
        except (StoreError, OSError):
            corrupt.append(digest)
    return corrupt


def _broken_images(db: Database, blobs: BlobStore, corrupt: set[str]) -> dict[str, list[str]]:
    broken: dict[str, list[str]] = {}
    for image_id, manifest_digest in db.query("SELECT id, manifest_digest FROM images"):
        needed = [str(manifest_digest), str(image_id)]  # an image's id is its config digest
        missing = [d for d in needed if d in corrupt or not blobs.has(d)]
        if not missing:
            try:
                Manifest.from_json(blobs.read(str(manifest_digest)))
            except (StoreError, SpecError):
                missing = [str(manifest_digest)]
        if missing:
            broken[str(image_id)] = missing
    return broken


def _inspect(root: Path, lock_timeout: float) -> StoreCheck:
    lock = DirectoryLock(str(root / "lock"))
    lock.acquire(lock_timeout)
    try:
        db = Database(str(root / "store.db"))
        try:
            half_done = repair(root, db, fix=False)
            blobs = BlobStore(root / "blobs", root / "tmp")
            corrupt = _corrupt_blobs(blobs)
            broken = _broken_images(db, blobs, set(corrupt))
            dropped = set(half_done.container_records_dropped)
            containers = [str(r[0]) for r in db.query("SELECT id FROM containers")]
            containers = [cid for cid in containers if cid not in dropped]
        finally:
            db.close()
    finally:
        lock.release()
    return StoreCheck(
        repaired=False,
        half_done=half_done,
        corrupt_blobs=corrupt,
        broken_images=broken,
        containers=containers,
    )


def _repair(root: Path, lock_timeout: float) -> StoreCheck:
    with Store.open(root, lock_timeout=lock_timeout, driver="vfs") as store:
        corrupt = _corrupt_blobs(store.blobs)
        for digest in corrupt:
            store.blobs.delete(digest)
        broken = _broken_images(store._db, store.blobs, set())
        left_alone: dict[str, str] = {}
        for image_id in broken:
            try:
                store.remove_image(image_id)
            except ImageInUseError as err:
                left_alone[image_id] = str(err)
        if corrupt or broken:
            log.warning(
                "check repaired store root=%s corrupt_blobs=%s broken_images=%s left_alone=%s",
                root, corrupt, sorted(broken), sorted(left_alone),
            )  # fmt: skip
        return StoreCheck(
            repaired=True,
            half_done=store.repair_report,
            corrupt_blobs=corrupt,
            broken_images=broken,
            left_alone=left_alone,
            containers=[container.id for container in store.list_containers()],
        )


def check_store(root: str | Path, *, repair: bool = False, lock_timeout: float = 0.0) -> StoreCheck:
    """Check the store at ``root`` (which must exist); with ``repair``, fix what was found.

    A store another process holds open raises :class:`StoreLockedError` after
    ``lock_timeout`` seconds: a check runs offline.
    """
    path = Path(root).resolve()
    if not (path / "store.db").is_file():
        raise StoreError(f"{path} holds no store (no store.db)")
    return _repair(path, lock_timeout) if repair else _inspect(path, lock_timeout)
