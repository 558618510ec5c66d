"""Content-addressed blobs: written to a temp file, verified, fsynced and renamed into place.

A blob's data is fsynced before its rename, so a blob that is visible after a crash is
complete. The rename itself is made durable later, once for all of an image's blobs,
by :meth:`BlobStore.sync_dirs` just before the image is recorded: until then a crash
may only lose the rename (the blob is then downloaded again), never expose a torn
file, and one directory fsync per image replaces one per blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ocispec.errors import InvalidDigestError
from ocispec.image import Descriptor, Digest
from ocistore._writes import pieces
from ocistore.errors import BlobNotFoundError, DigestMismatchError, StoreError

__all__ = ["BlobStore", "BlobWriter"]

log = logging.getLogger(__name__)


def _parse(digest: str) -> Digest:
    try:
        parsed = Digest(digest)
        parsed.hasher()
    except InvalidDigestError as err:
        raise StoreError(f"unusable digest {digest!r}: {err}") from err
    return parsed


def fsync_dir(path: str | Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Receives one blob's bytes; :meth:`commit` makes it visible only if it verifies.

    Implements the pull sink's ``BlobWriter`` protocol: ``offset`` is the number of
    bytes accepted so far, the content is hashed as it arrives, and nothing is visible
    in the store until :meth:`commit` checked size and digest.
    """

    def __init__(self, store: BlobStore, descriptor: Descriptor) -> None:
        self._store = store
        self._descriptor = descriptor
        self._digest = _parse(descriptor.digest)
        self._hash = self._digest.hasher()
        self._tmp = store.temp_path("blob")
        self._fh: BinaryIO | None = open(self._tmp, "xb")  # noqa: SIM115
        self._offset = 0
        self._done = False

    @property
    def offset(self) -> int:
        """Bytes accepted so far: where a resumed download continues."""
        return self._offset

    @property
    def descriptor(self) -> Descriptor:
        return self._descriptor

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` (used before returning: the caller may refill its buffer);
        more bytes than the descriptor's size abort the blob."""
        if self._fh is None:
            raise StoreError(f"blob writer for {self._digest} is closed")
        if self._offset + len(data) > self._descriptor.size:
            self.abort()
            raise DigestMismatchError(
                f"blob {self._digest}: more than the declared {self._descriptor.size} bytes"
            )
        for piece in pieces(data):  # a piece past the buffer's size is written at once
            self._fh.write(piece)
        self._hash.update(data)
        self._offset += len(data)

    def commit(self) -> None:
        """Verify size and digest, fsync, then rename into place; on mismatch keep nothing."""
        if self._done:
            return
        if self._fh is None:
            raise StoreError(f"blob writer for {self._digest} was aborted")
        if self._offset != self._descriptor.size:
            self.abort()
            raise DigestMismatchError(
                f"blob {self._digest}: got {self._offset} bytes, want {self._descriptor.size}"
            )
        actual = f"{self._digest.algorithm}:{self._hash.hexdigest()}"
        if actual != self._digest:
            self.abort()
            raise DigestMismatchError(f"blob content has digest {actual}, want {self._digest}")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        self._store.install(self._tmp, self._digest)
        self._done = True

    def abort(self) -> None:
        """Drop what was written; safe to call twice or after a failed commit.

        Closing flushes what is still buffered; on a full disk that fails as the commit's
        flush did (the file is closed all the same): those bytes are being dropped, and
        the temp file must go whatever the close said.
        """
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()
        if not self._done:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None or not self._done:
            self.abort()


class BlobStore:
    """Blobs under ``<root>/blobs/<algorithm>/<encoded>``, temp files under ``<root>/tmp``."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp

    def temp_path(self, kind: str) -> Path:
        return self.tmp / f"{kind}-{secrets.token_hex(8)}"

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (whether or not it exists)."""
        d = _parse(digest)
        return self.root / d.algorithm / d.encoded

    def has(self, digest: str) -> bool:
        try:
            return self.path(digest).is_file()
        except StoreError:
            return False

    def install(self, tmp: Path, digest: Digest) -> None:
        """Rename a verified, fsynced temp file into place (a concurrent twin is fine).

        The rename is durable only after :meth:`sync_dirs` (see the module docs).
        """
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o444)
        tmp.rename(target)
        log.debug("stored blob digest=%s", digest)

    def sync_dirs(self, digests: Iterable[str]) -> None:
        """Make the renames of ``digests`` durable: one fsync per algorithm directory
        (all of an image's blobs usually share ``sha256/``), before anything records
        them."""
        for directory in sorted({self.path(d).parent for d in digests}):
            fsync_dir(directory)

    def writer(self, descriptor: Descriptor) -> BlobWriter:
        return BlobWriter(self, descriptor)

    def put(self, media_type: str, data: bytes) -> Descriptor:
        """Store ``data`` and return its descriptor."""
        descriptor = Descriptor.from_bytes(media_type, data)
        if not self.has(descriptor.digest):
            with self.writer(descriptor) as w:
                w.write(data)
                w.commit()
        return descriptor

    def open(self, digest: str) -> BinaryIO:
        """A binary file object reading the blob."""
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError as err:
            raise BlobNotFoundError(f"blob {digest} not found") from err

    def read(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError as err:
            raise BlobNotFoundError(f"blob {digest} not found") from err

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        """Every stored blob's digest."""
        if not self.root.is_dir():
            return
        for algo in sorted(self.root.iterdir()):
            for blob in sorted(algo.iterdir()):
                yield f"{algo.name}:{blob.name}"

    def verify(self, digest: str) -> bool:
        """Re-hash a stored blob (for repair and tests)."""
        d = _parse(digest)
        h = hashlib.new(d.algorithm)
        with self.open(digest) as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return h.hexdigest() == d.encoded
