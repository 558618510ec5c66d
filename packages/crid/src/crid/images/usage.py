"""How much of its file system the image store takes: CRI ``ImageFsInfo``.

The kubelet's image garbage collection and disk-pressure eviction read these numbers.
Images (blobs and unpacked layers) and containers' writable layers live in the same
store directory, so both usages name the store's path as their file system.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ocistore import AsyncStore

__all__ = ["FilesystemUsage", "StorageUsage", "storage_usage"]


@dataclass(frozen=True, kw_only=True)
class FilesystemUsage:
    """Bytes and inodes used on the file system mounted at (or holding) ``mountpoint``."""

    mountpoint: str
    used_bytes: int
    inodes_used: int
    timestamp_ns: int


@dataclass(frozen=True, kw_only=True)
class StorageUsage:
    """Image usage and container writable-layer usage."""

    images: FilesystemUsage
    containers: FilesystemUsage


async def storage_usage(store: AsyncStore, storage_dir: Path) -> StorageUsage:
    """Measure the store (walks its directories in a thread)."""
    usage = await store.usage()
    now = time.time_ns()
    return StorageUsage(
        images=FilesystemUsage(
            mountpoint=str(storage_dir),
            used_bytes=usage.images.bytes,
            inodes_used=usage.images.inodes,
            timestamp_ns=now,
        ),
        containers=FilesystemUsage(
            mountpoint=str(storage_dir),
            used_bytes=usage.containers.bytes,
            inodes_used=usage.containers.inodes,
            timestamp_ns=now,
        ),
    )
