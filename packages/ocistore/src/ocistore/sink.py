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

    Keep the object to read :attr:`image` (the committed image) after the pull.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.image: Image | None = None

    def has_blob(self, digest: str) -> bool:
        """Whether the blob is stored and verified, so the download can be skipped."""
        return self._store.has_blob(digest)

    def open_blob(self, descriptor: Descriptor) -> BlobWriter:
        """A writer that verifies size and digest before the blob becomes visible."""
        return self._store.open_blob(descriptor)

    def commit_image(
        self, *, manifest: Descriptor, names: Sequence[str], index: Descriptor | None = None
    ) -> None:
        """Unpack the image's layers (in parallel) and record the image atomically."""
        self.image = self._store.commit_image(manifest=manifest, names=names, index=index)
