"""syncfs(2) through ctypes (Python's ``os`` lacks it); mounts are :mod:`ocistore.mounts`."""

from __future__ import annotations

import ctypes
import os

__all__ = ["syncfs"]

# dlopen(NULL): the C library already loaded; find_library would run ldconfig -p.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syncfs.argtypes = [ctypes.c_int]


def syncfs(fd: int) -> None:
    """Flush the whole file system holding ``fd``: one call instead of an fsync per file."""
    if _libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
