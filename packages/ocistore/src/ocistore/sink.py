"""The pull sink ociimage writes to (its ``PullSink`` protocol, implemented structurally)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ocispec.image import Descriptor
from ocistore.blobs import BlobWriter

if TYPE_CHECKING:
    from ocistore.images import Image
    from ocistore.store import Store

__all__ = ["StorePullSink"]


class StorePullSink:
    """Receives one pull: blobs go to the blob store, ``commit_image`` unpacks and records.

    Keep the object to read :attr:`image` (the committed image) after the pull. Every
    blob the pull looks at is held from GC until :meth:`release` (or the end of a
    ``with`` block), so a GC may run at any time, even with no grace period: what a
    failed or cancelled pull left is unreferenced and unheld once it is released.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._held: list[str] = []
        self.image: Image | None = None

    def __enter__(self) -> StorePullSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # A sink dropped without release (no ``with``) must not pin its blobs forever.
        self.release()

    def _hold(self, digest: str) -> None:
        self._store.hold_blob(digest)
        self._held.append(digest)

    def release(self) -> None:
        """Let GC see the blobs this pull held (idempotent)."""
        held, self._held = self._held, []
        self._store.release_blobs(held)

    def has_blob(self, digest: str) -> bool:
        """Whether the blob is stored and verified, so the download can be skipped."""
        self._hold(digest)  # before the look, so a GC cannot delete it after
        return self._store.has_blob(digest)

    def open_blob(self, descriptor: Descriptor) -> BlobWriter:
        """A writer that verifies size and digest before the blob becomes visible."""
        self._hold(descriptor.digest)
        return self._store.open_blob(descriptor)

    def commit_image(
        self, *, manifest: Descriptor, names: Sequence[str], index: Descriptor | None = None
    ) -> None:
        """Unpack the image's layers (in parallel) and record the image atomically."""
        self.image = self._store.commit_image(manifest=manifest, names=names, index=index)
