"""mount(2) and umount2(2) for callers of ocistore, and the mount table.

Python's ``os`` has neither call. ocistore mounts overlays and image volumes with these;
crid mounts a pod's ``/dev/shm`` tmpfs with them rather than keeping its own ctypes
binding. Errors are ``OSError`` with the errno (callers decide which are fine).
"""

from __future__ import annotations

import ctypes
import errno
import os

__all__ = [
    "MNT_DETACH",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_RDONLY",
    "MS_REMOUNT",
    "UMOUNT_NOFOLLOW",
    "is_mountpoint",
    "mount",
    "mountpoints",
    "umount",
]

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# dlopen(NULL): the C library already loaded; find_library would run ldconfig -p.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2) ``source`` on ``target``; an empty ``fstype`` or ``data`` passes NULL
    (bind mounts and remounts)."""
    rc = _libc.mount(
        os.fsencode(source), os.fsencode(target), fstype.encode() or None, flags,
        data.encode() or None,
    )  # fmt: skip
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target: str, flags: int = 0, *, missing_ok: bool = False) -> None:
    """umount2(2). With ``missing_ok``, nothing mounted there (EINVAL) or no such path
    (ENOENT) is not an error: idempotent teardown."""
    if _libc.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        if missing_ok and err in (errno.EINVAL, errno.ENOENT):
            return
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


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
