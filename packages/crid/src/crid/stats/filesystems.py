"""Block devices and file systems by name, as cAdvisor labels them (``/dev/vda``).

The ``device`` label of the ``container_fs_*`` and blkio metrics is the device's name:
``/sys/dev/block/<major>:<minor>/uevent`` gives it for block devices; a file system
without one (tmpfs, overlay) is named by its mount source in ``/proc/self/mountinfo``.
Names are cached: devices do not change names while they exist.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FsInfo", "device_name", "filesystem_of"]


@dataclass(frozen=True, kw_only=True)
class FsInfo:
    """The file system holding a container's writable layer: size and inodes."""

    timestamp_ns: int
    device: str
    capacity_bytes: int
    inodes_total: int
    inodes_free: int


def _uevent_name(major: int, minor: int) -> str | None:
    try:
        text = Path(f"/sys/dev/block/{major}:{minor}/uevent").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME" and value:
            return f"/dev/{value}"
    return None


def _mount_source(major: int, minor: int) -> str | None:
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    wanted = f"{major}:{minor}"
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        rest = right.split()
        if len(fields) > 2 and fields[2] == wanted and len(rest) > 1:
            return rest[1]
    return None


@functools.lru_cache(maxsize=256)
def device_name(major: int, minor: int) -> str:
    """``/dev/<name>`` of a block device, else the mount source, else ``major:minor``."""
    return _uevent_name(major, minor) or _mount_source(major, minor) or f"{major}:{minor}"


def filesystem_of(path: Path) -> FsInfo:
    """Size and inodes of the file system holding ``path`` (one statvfs)."""
    device = path.stat().st_dev
    found = os.statvfs(path)
    return FsInfo(
        timestamp_ns=time.time_ns(),
        device=device_name(os.major(device), os.minor(device)),
        capacity_bytes=found.f_blocks * found.f_frsize,
        inodes_total=found.f_files,
        inodes_free=found.f_ffree,
    )
