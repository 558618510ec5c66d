"""Thin ctypes wrappers for the Linux calls Python's ``os`` lacks: mount, umount2, syncfs."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = [
    "MNT_DETACH",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOSUID",
    "MS_RDONLY",
    "MS_REMOUNT",
    "UMOUNT_NOFOLLOW",
    "is_mountpoint",
    "mount",
    "syncfs",
    "umount",
]

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.syncfs.argtypes = [ctypes.c_int]


def mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2); raises OSError with the errno on failure."""
    rc = _libc.mount(
        os.fsencode(source), os.fsencode(target), fstype.encode() or None, flags,
        data.encode() or None,
    )  # fmt: skip
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target: str, flags: int = 0) -> None:
    """umount2(2); raises OSError with the errno on failure."""
    if _libc.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def syncfs(fd: int) -> None:
    """Flush the whole file system holding ``fd``: one call instead of an fsync per file."""
    if _libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _unescape(field: str) -> str:
    """Decode mountinfo's octal escapes (``\\040`` is a space)."""
    out = bytearray()
    i = 0
    raw = field.encode()
    while i < len(raw):
        if raw[i] == 0x5C and i + 3 < len(raw) + 1 and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def mountpoints() -> set[str]:
    """Every mount point of this mount namespace, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        return {_unescape(line.split(" ", 5)[4]) for line in fh if line.strip()}


def is_mountpoint(path: str) -> bool:
    """Whether ``path`` (absolute, resolved) is a mount point."""
    return path in mountpoints()
