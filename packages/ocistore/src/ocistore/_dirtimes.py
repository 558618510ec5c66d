"""Directory mtimes to set after a layer is unpacked, kept on disk rather than in memory.

A directory's mtime can only be set once nothing more is created in it, so every
directory entry's time waits until the end of the layer. A layer may hold millions of
directories: the records go to an unnamed ``O_TMPFILE`` beside the layer (or a
temporary file), so memory stays flat however many there are.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["DirTimes"]

_RECORD = struct.Struct("<qI")


class DirTimes:
    """An append-only list of (path components, mtime in ns), replayed in order."""

    def __init__(self, near: str) -> None:
        try:
            fd = os.open(near, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:  # a file system without O_TMPFILE
            self._file: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115
        else:
            self._file = open(fd, "w+b", buffering=1 << 16)  # noqa: SIM115
        self.count = 0

    def add(self, parts: tuple[str, ...], mtime_ns: int) -> None:
        path = "/".join(parts).encode("utf-8", "surrogateescape")
        self._file.write(_RECORD.pack(mtime_ns, len(path)) + path)
        self.count += 1

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], int]]:
        """Every record in the order added (a later time for the same path wins)."""
        self._file.seek(0)
        read = self._file.read
        for _ in range(self.count):
            mtime, size = _RECORD.unpack(read(_RECORD.size))
            path = read(size).decode("utf-8", "surrogateescape")
            yield (tuple(path.split("/")) if path else ()), mtime

    def close(self) -> None:
        self._file.close()
