"""The pull sink protocol: where pulled content goes (agreed with ocistore; keep it exact).

ociimage writes every blob of an image through a :class:`PullSink`, then asks it to make
the image visible. Implementations (``ociimage.layout.OCILayoutSink``, ocistore's store)
satisfy it structurally and need not import ociimage. All methods are synchronous
(blocking file I/O); ociimage calls them from worker threads (``asyncio.to_thread``),
never on the event loop. Descriptors are :class:`ocispec.image.Descriptor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ocispec.image import Descriptor

__all__ = ["BlobWriter", "PullSink"]


@runtime_checkable
class BlobWriter(Protocol):
    """Receives one blob's bytes, in order, and commits it once complete."""

    @property
    def offset(self) -> int:
        """Bytes already accepted: the resume point after a dropped connection."""
        ...

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``; the writer hashes as it goes.

        ``data`` may be a view of a buffer that is refilled once this returns: use it
        (write, hash) before returning, never keep a reference to it."""
        ...

    def commit(self) -> None:
        """Verify size and digest against the descriptor, then make the blob visible
        atomically. On a mismatch raise the sink's own error, leaving nothing visible."""
        ...

    def abort(self) -> None:
        """Discard everything written; idempotent."""
        ...


@runtime_checkable
class PullSink(Protocol):
    """Stores the blobs of pulled images and records the images under their names."""

    def has_blob(self, digest: str) -> bool:
        """Whether the blob is already stored and verified: then it is not downloaded."""
        ...

    def open_blob(self, descriptor: Descriptor) -> BlobWriter:
        """A writer for one blob (layer, config, manifest or index)."""
        ...

    def commit_image(
        self,
        *,
        manifest: Descriptor,
        names: Sequence[str],
        index: Descriptor | None = None,
    ) -> None:
        """Make the image visible atomically under ``names``.

        Called once after every blob of the image (the manifest's bytes, its config, all
        its layers, and the index's bytes when ``index`` is given) has been committed.
        ``names`` are fully qualified references (``127.0.0.1:5000/busybox:latest``); it
        may be empty for a by-digest pull, in which case the image is still recorded with
        its repo digest (``repo@sha256:...``). A name that pointed to another image moves.
        ``manifest`` is the platform-specific image manifest; ``index``, when the
        reference resolved through an index, is that index's descriptor (its digest is the
        repo digest the user asked for).
        """
        ...
