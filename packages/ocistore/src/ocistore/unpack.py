"""Streaming, secure unpacking of one layer tarball into an overlay-native directory.

:class:`~ocistore._tar.TarReader` parses the stream one entry at a time with bounded
memory; each entry is applied here through :class:`~ocistore._tree.SafeRoot`.
Whiteouts become 0:0 character devices and opaque markers the
``trusted.overlay.opaque=y`` xattr, which is what overlayfs reads natively. Sparse
files keep their holes.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import stat
from collections.abc import Sequence
from typing import BinaryIO

from ocistore._dirtimes import DirTimes
from ocistore._stream import DigestingReader, decode_errors, decompressed
from ocistore._tar import TarEntry, TarReader
from ocistore._tree import SafeRoot, split_path
from ocistore._unpack_types import IDMapping, UnpackLimits, UnpackOptions, UnpackResult
from ocistore._writes import write_all
from ocistore.errors import (
    DiffIDMismatchError,
    LayerError,
    LayerLimitError,
    StoreError,
    UnsafeLayerError,
)

__all__ = [
    "OPAQUE_XATTR",
    "IDMapping",
    "UnpackLimits",
    "UnpackOptions",
    "UnpackResult",
    "unpack_layer",
]

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _map_id(value: int, mappings: Sequence[IDMapping], what: str) -> int:
    if not mappings:
        return value
    for m in mappings:
        if m.container_id <= value < m.container_id + m.size:
            return m.host_id + value - m.container_id
    raise LayerError(f"{what} {value} has no mapping in the id map")


def _xattrs(member: TarEntry) -> dict[str, bytes]:
    """Extended attributes from PAX records (``SCHILY.xattr.*`` and libarchive's base64 form)."""
    out: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            out[key[len("SCHILY.xattr.") :]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            try:
                out[key[len("LIBARCHIVE.xattr.") :]] = base64.b64decode(value + "==")
            except binascii.Error:
                log.warning("undecodable xattr entry=%s key=%s", member.name, key)
    # A layer must not steer overlayfs itself (redirects, metacopy, forged opaque marks).
    return {k: v for k, v in out.items() if not k.startswith("trusted.overlay.")}


class _Applier:
    """Applies tar members one by one under a :class:`SafeRoot`."""

    def __init__(
        self,
        root: SafeRoot,
        tar: TarReader,
        reader: DigestingReader,
        dir_times: DirTimes,
        options: UnpackOptions,
    ) -> None:
        self.root = root
        self.tar = tar
        self.reader = reader
        self.options = options
        self.dir_times = dir_times
        self.max_depth = options.limits.max_depth
        self.buffer = memoryview(bytearray(_CHUNK))

    def split(self, name: str, what: str = "entry") -> tuple[str, ...]:
        """``split_path`` plus the depth limit, checked before any directory is opened."""
        parts = split_path(name)
        if len(parts) > self.max_depth:
            shown = repr(name) if len(name) <= 200 else repr(name[:200]) + "..."
            raise LayerLimitError(
                f"layer {what} {shown} is {len(parts)} levels deep; the limit is "
                f"{self.max_depth} (UnpackLimits.max_depth)"
            )
        return parts

    def owner(self, member: TarEntry) -> tuple[int, int]:
        return (
            _map_id(member.uid, self.options.uid_map, "uid"),
            _map_id(member.gid, self.options.gid_map, "gid"),
        )

    def apply(self, member: TarEntry) -> None:
        self.root.settle()
        parts = self.split(member.name)
        if not parts:
            if member.isdir():
                self.finish(self.root.fd, member, is_dir=True, parts=())
            return
        name = parts[-1]
        if name.startswith(WHITEOUT_PREFIX):
            self.whiteout(parts)
            return
        parent = self.root.dir_fd(parts[:-1])
        if member.isdir():
            if not self.root.clear(parent, parts, keep_dir=True):
                os.mkdir(name, 0o700, dir_fd=parent)
            self.finish(self.root.dir_fd(parts), member, is_dir=True, parts=parts)
            return
        if member.islnk():
            self.hardlink(parent, parts, member)
            return
        self.root.clear(parent, parts, keep_dir=False)
        if member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)
            uid, gid = self.owner(member)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
            mtime = int(member.mtime * 1e9)
            os.utime(name, ns=(mtime, mtime), dir_fd=parent, follow_symlinks=False)
        elif member.isreg():
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=parent)
            try:
                self.copy_data(fd, member)
                self.finish(fd, member, is_dir=False, parts=parts)
            finally:
                os.close(fd)
        elif member.ischr() or member.isblk():
            if not self.options.allow_devices:
                log.warning("skipping device node without privileges entry=%s", member.name)
                return
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            dev = os.makedev(member.devmajor, member.devminor)
            os.mknod(name, kind | 0o600, dev, dir_fd=parent)
            self.finish_path(parent, name, member)
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent)
            self.finish_path(parent, name, member)
        else:
            log.warning("skipping tar entry of unknown type entry=%s", member.name)

    def whiteout(self, parts: tuple[str, ...]) -> None:
        name = parts[-1]
        parent_parts = parts[:-1]
        if name == OPAQUE_MARKER:
            fd = self.root.dir_fd(parent_parts)
            os.setxattr(f"/proc/self/fd/{fd}", OPAQUE_XATTR, b"y")
            return
        target = name[len(WHITEOUT_PREFIX) :]
        if target.startswith(WHITEOUT_PREFIX):
            return  # AUFS metadata (.wh..wh.plnk and friends) means nothing to overlay
        if target in ("", ".", ".."):
            raise UnsafeLayerError(f"whiteout {'/'.join(parts)!r} names no entry")
        parent = self.root.dir_fd(parent_parts)
        self.root.clear(parent, (*parent_parts, target), keep_dir=False)
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
        uid = _map_id(0, self.options.uid_map, "uid")
        gid = _map_id(0, self.options.gid_map, "gid")
        os.chown(target, uid, gid, dir_fd=parent, follow_symlinks=False)

    def hardlink(self, parent: int, parts: tuple[str, ...], member: TarEntry) -> None:
        target = self.split(member.linkname, "hard link target")
        if not target:
            raise UnsafeLayerError(f"hard link {member.name!r} points at the layer root")
        if target == parts:
            return
        try:
            src_dir = self.root.dir_fd(target[:-1], create=False)
            os.stat(target[-1], dir_fd=src_dir, follow_symlinks=False)
        except FileNotFoundError as err:
            raise UnsafeLayerError(
                f"hard link {member.name!r} targets {member.linkname!r}, not in this layer"
            ) from err
        self.root.clear(parent, parts, keep_dir=False)
        src_dir = self.root.dir_fd(target[:-1], create=False)
        os.link(target[-1], parts[-1], src_dir_fd=src_dir, dst_dir_fd=parent, follow_symlinks=False)

    def copy_data(self, fd: int, member: TarEntry) -> None:
        if member.sparse is not None:
            self.copy_sparse(fd, member, member.sparse)
            return
        while n := self.tar.readinto(self.buffer):
            write_all(fd, self.buffer[:n])

    def copy_sparse(self, fd: int, member: TarEntry, segments: Sequence[int]) -> None:
        """Write each data segment at its offset, then set the size: holes stay holes.

        The holes count against ``max_bytes`` as if they were data (the apparent size),
        before anything is written.
        """
        self.reader.charge(member.realsize - member.size)
        for i in range(0, len(segments), 2):
            offset, left = segments[i], segments[i + 1]
            while left:
                n = self.tar.readinto(self.buffer[: min(left, _CHUNK)])
                view = self.buffer[:n]
                while view:
                    written = os.pwrite(fd, view, offset)
                    offset += written
                    view = view[written:]
                left -= n
        os.ftruncate(fd, member.realsize)

    def finish_path(self, parent: int, name: str, member: TarEntry) -> None:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            self.finish(fd, member, is_dir=False, parts=(), via_proc=True)
        finally:
            os.close(fd)

    def finish(
        self,
        fd: int,
        member: TarEntry,
        *,
        is_dir: bool,
        parts: tuple[str, ...],
        via_proc: bool = False,
    ) -> None:
        """Owner, then mode (chown clears setuid), xattrs, then times (dirs: at the end)."""
        target: int | str = f"/proc/self/fd/{fd}" if via_proc else fd
        uid, gid = self.owner(member)
        os.chown(target, uid, gid)
        os.chmod(target, stat.S_IMODE(member.mode))  # noqa: PTH101 - an fd, not a path
        for key, value in _xattrs(member).items():
            try:
                os.setxattr(target, key, value)
            except OSError as err:
                log.warning("cannot set xattr entry=%s key=%s err=%s", member.name, key, err)
        mtime = int(member.mtime * 1e9)
        if is_dir:
            self.dir_times.add(parts, mtime)
        else:
            os.utime(target, ns=(mtime, mtime))

    def set_dir_times(self) -> None:
        for parts, mtime in self.dir_times:
            try:
                fd = self.root.dir_fd(parts, create=False)
            except (FileNotFoundError, UnsafeLayerError):
                continue  # replaced by a later entry
            os.utime(fd, ns=(mtime, mtime))


def unpack_layer(
    blob: BinaryIO,
    dest: str,
    *,
    media_type: str,
    diff_id: str | None = None,
    options: UnpackOptions | None = None,
) -> UnpackResult:
    """Unpack the layer blob read from ``blob`` into the existing empty directory ``dest``.

    The uncompressed stream is hashed on the way; if ``diff_id`` is given and differs
    the layer is refused with :class:`DiffIDMismatchError` (``dest`` then holds a
    partial tree the caller must discard).
    """
    opts = options or UnpackOptions()
    limits = opts.limits
    reader = DigestingReader(decompressed(blob, media_type), limits.max_bytes)
    tar = TarReader(io.BufferedReader(reader, 1 << 16), max_header_bytes=limits.max_header_bytes)
    root = SafeRoot(dest)
    dir_times = DirTimes(dest)
    entries = 0
    try:
        applier = _Applier(root, tar, reader, dir_times, opts)
        for member in tar:
            entries += 1
            if entries > limits.max_entries:
                raise LayerLimitError(
                    f"layer has more than {limits.max_entries} entries; refusing it "
                    "(UnpackLimits.max_entries)"
                )
            applier.apply(member)
        applier.set_dir_times()
        reader.drain()
    except StoreError:
        raise
    except decode_errors() as err:  # evaluated only when an exception gets here
        raise LayerError(f"corrupt layer stream: {err}") from err
    except (OverflowError, ValueError) as err:  # an id, time or device number out of range
        raise LayerError(f"layer entry with an unusable value: {err}") from err
    except OSError as err:
        raise LayerError(f"unpacking layer failed: {err}") from err
    finally:
        dir_times.close()
        root.close()
    if diff_id is not None and reader.digest != diff_id:
        raise DiffIDMismatchError(f"layer diff_id is {reader.digest}, the config says {diff_id}")
    return UnpackResult(diff_id=reader.digest, size=reader.count, entries=entries)
