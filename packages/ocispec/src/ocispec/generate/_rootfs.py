"""Reading files inside a container rootfs without ever leaving it.

A rootfs comes from an image and is untrusted: ``/etc/passwd`` may be a symlink to
``/etc/shadow`` of the host, or ``../../../../etc/passwd``. Paths are resolved as if the
rootfs were ``/``: with ``openat2(RESOLVE_IN_ROOT)`` where the kernel has it, else by
walking the path component by component, resolving each symlink against the rootfs,
and opening the result with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path, PurePosixPath

__all__ = ["read_file_in_root", "secure_join"]

_MAX_LINKS = 255
_MAX_SIZE = 16 * 1024 * 1024
_SYS_OPENAT2 = 437  # the same number on every architecture (generic syscall table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc: ctypes.CDLL | None = None
_openat2_works: bool | None = None


def _openat2(dirfd: int, path: str, flags: int) -> int:
    """openat2 with RESOLVE_IN_ROOT; raises OSError (ENOSYS when the kernel lacks it)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    how = _OpenHow(flags, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def secure_join(root: str | os.PathLike[str], unsafe_path: str) -> str:
    """``unsafe_path`` resolved inside ``root`` as if ``root`` were ``/``; symlinks never escape.

    Components that do not exist are kept as they are. Raises OSError(ELOOP) on too many links.
    """
    root_s = os.fspath(root)
    pending = [p for p in PurePosixPath("/", unsafe_path).parts[1:]]
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = Path(root_s, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", unsafe_path)
        target = str(candidate.readlink())
        if target.startswith("/"):
            resolved = []
        pending = [p for p in PurePosixPath(target).parts if p != "/"] + pending
    return str(Path(root_s, *resolved))


def _read_fd(fd: int, path: str) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", path)
    if st.st_size > _MAX_SIZE:
        raise OSError(errno.EFBIG, "file too large", path)
    chunks = []
    total = 0
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
        total += len(chunk)
        if total > _MAX_SIZE:
            raise OSError(errno.EFBIG, "file too large", path)
    return b"".join(chunks)


def read_file_in_root(
    root: str | os.PathLike[str], path: str, *, use_openat2: bool | None = None
) -> bytes | None:
    """The contents of ``path`` inside ``root``, or None if it does not exist there.

    Only regular files are read (a device or FIFO raises OSError). ``use_openat2=False``
    forces the portable path walk; None uses openat2 when the kernel supports it.
    """
    global _openat2_works
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
    rel = path.lstrip("/")
    if use_openat2 is not False and _openat2_works is not False:
        dirfd = os.open(os.fspath(root), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = _openat2(dirfd, rel, flags)
            _openat2_works = True
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            if err.errno not in (errno.ENOSYS, errno.EPERM) or use_openat2:
                raise
            _openat2_works = False
        else:
            try:
                return _read_fd(fd, path)
            finally:
                os.close(fd)
        finally:
            os.close(dirfd)
    target = secure_join(root, rel)
    try:
        fd = os.open(target, flags | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return _read_fd(fd, path)
    finally:
        os.close(fd)
