"""The vfs driver's copy: apply overlay-native layer directories one after another.

Used where overlayfs cannot mount. Whiteout devices delete, opaque directories drop
what lower layers put there, hard links inside a layer stay hard links, sparse files
keep their holes.
"""

# str paths on purpose: a Path object per copied file is measurably slower
# ruff: noqa: PTH101, PTH102, PTH108, PTH112, PTH115, PTH118, PTH208, PTH211
from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

__all__ = ["copy_layers"]

_OPAQUE = "trusted.overlay.opaque"


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _xattrs(src: str, dst: str, *, follow: bool) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError:
        return
    for name in names:
        if name.startswith("trusted.overlay."):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=follow),
                        follow_symlinks=follow)  # fmt: skip
        except OSError:
            continue


def _meta(src: str, dst: str, st: os.stat_result, *, times: bool = True) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        _xattrs(src, dst, follow=True)
    if times:
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_sparse(src: str, dst: str, size: int) -> None:
    """Copy only the data extents (SEEK_DATA/SEEK_HOLE), then set the size: holes stay holes.

    A layer's sparse file may be tiny on disk yet huge in apparent size; a plain copy
    would write every zero of it.
    """
    buf = memoryview(bytearray(1 << 20))
    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dst_fd = os.open(
            dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            pos = 0
            while pos < size:
                try:
                    start = os.lseek(src_fd, pos, os.SEEK_DATA)
                except OSError as err:
                    if err.errno == errno.ENXIO:  # only a hole is left
                        break
                    raise
                end = os.lseek(src_fd, start, os.SEEK_HOLE)
                while start < end:
                    n = os.preadv(src_fd, [buf[: min(end - start, len(buf))]], start)
                    if n == 0:
                        break
                    view = buf[:n]
                    while view:
                        written = os.pwrite(dst_fd, view, start)
                        start += written
                        view = view[written:]
                pos = end
            os.ftruncate(dst_fd, size)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _apply_layer(layer: str, dest: str, dir_times: list[tuple[str, os.stat_result]]) -> None:
    links: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(layer):
        rel = os.path.relpath(dirpath, layer)
        target_dir = dest if rel == "." else os.path.join(dest, rel)
        for name in sorted(dirnames + filenames):
            src = os.path.join(dirpath, name)
            dst = os.path.join(target_dir, name)
            st = os.lstat(src)
            if _is_whiteout(st):
                _remove(dst)
                continue
            if stat.S_ISDIR(st.st_mode):
                try:
                    existing = os.lstat(dst)
                except FileNotFoundError:
                    existing = None
                if existing is not None and not stat.S_ISDIR(existing.st_mode):
                    os.unlink(dst)
                    existing = None
                if existing is None:
                    os.mkdir(dst, 0o700)
                elif _OPAQUE in os.listxattr(src):
                    for child in os.listdir(dst):
                        _remove(os.path.join(dst, child))
                _meta(src, dst, st, times=False)
                dir_times.append((dst, st))
                continue
            _remove(dst)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], dst, follow_symlinks=False)
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISREG(st.st_mode) and st.st_blocks * 512 < st.st_size:
                _copy_sparse(src, dst, st.st_size)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, dst, follow_symlinks=False)
            elif stat.S_ISFIFO(st.st_mode):
                os.mkfifo(dst, 0o600)
            else:
                os.mknod(dst, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
            _meta(src, dst, st)
            if st.st_nlink > 1:
                links[key] = dst


def copy_layers(layers: Sequence[Path], dest: Path) -> None:
    """Build a full root filesystem in ``dest`` from layer directories, bottom first."""
    dir_times: list[tuple[str, os.stat_result]] = []
    for layer in layers:
        root_st = os.lstat(layer)
        _meta(str(layer), str(dest), root_st, times=False)
        _apply_layer(str(layer), str(dest), dir_times)
    for path, st in reversed(dir_times):
        if os.path.isdir(path):
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
