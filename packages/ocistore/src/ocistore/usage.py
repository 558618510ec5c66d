"""Disk usage in bytes and inodes, as CRI's ImageFsInfo and container stats report it."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StoreUsage", "Usage", "measure"]


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Allocated bytes (``st_blocks`` * 512, as du counts) and inodes; hard links count once."""

    bytes: int = 0
    inodes: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(bytes=self.bytes + other.bytes, inodes=self.inodes + other.inodes)


@dataclass(frozen=True, kw_only=True)
class StoreUsage:
    """Usage of images (blobs and layers) and of containers' writable layers."""

    images: Usage
    containers: Usage
    per_container: dict[str, Usage]


def measure(path: Path, *, seen: set[tuple[int, int]] | None = None) -> Usage:
    """Walk ``path`` without following symlinks or crossing into other file systems."""
    seen = set() if seen is None else seen
    total_bytes = 0
    inodes = 0
    try:
        root_dev = os.lstat(path).st_dev
    except FileNotFoundError:
        return Usage()
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        key = (st.st_dev, st.st_ino)
        if key not in seen:
            seen.add(key)
            total_bytes += st.st_blocks * 512
            inodes += 1
        if stat.S_ISDIR(st.st_mode) and st.st_dev == root_dev:
            try:
                with os.scandir(current) as it:
                    stack.extend(entry.path for entry in it)
            except (FileNotFoundError, NotADirectoryError):
                continue
    return Usage(bytes=total_bytes, inodes=inodes)
