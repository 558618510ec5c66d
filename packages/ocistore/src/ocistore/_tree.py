"""A layer directory written only through directory fds opened with ``O_NOFOLLOW``.

Every path a layer names is split into components and walked from the layer's root
fd one ``openat(O_NOFOLLOW | O_DIRECTORY)`` at a time, so no symlink, ``..`` or
absolute path can lead a write outside the root, whatever the layer placed earlier.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from ocistore.errors import UnsafeLayerError

__all__ = ["SafeRoot", "split_path"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_MAX = 128


def split_path(name: str) -> tuple[str, ...]:
    """The components of a tar member name, relative to the layer root.

    Leading ``/`` and ``.`` components are dropped (absolute names land inside the
    layer, as every tar unpacker treats them); a ``..`` component is refused.
    """
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeLayerError(f"layer entry {name!r} climbs out with '..'")
    return parts


class SafeRoot:
    """Open directory fds under one root, cached because tar entries come sorted."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, _DIR_FLAGS)
        self._cache: dict[tuple[str, ...], int] = {}
        self._retired: list[int] = []

    def close(self) -> None:
        self._drop_cache()
        self.settle()
        os.close(self.fd)

    def settle(self) -> None:
        """Close fds evicted from the cache; call between entries, never during one.

        Deferring the close keeps every fd handed out while applying one entry valid:
        a closed fd's number could be reused by the next open and name another directory.
        """
        for fd in self._retired:
            os.close(fd)
        self._retired.clear()

    def _drop_cache(self) -> None:
        self._retired.extend(self._cache.values())
        self._cache.clear()

    def dir_fd(self, parts: tuple[str, ...], *, create: bool = True) -> int:
        """The fd of directory ``parts``; missing directories are made (0755) if ``create``.

        The walk starts at the deepest cached ancestor and holds at most two fds of its
        own at a time, so a deep path costs time, never descriptors. A component that is
        a symlink, file or device raises :class:`UnsafeLayerError`.
        """
        if not parts:
            return self.fd
        cached = self._cache.get(parts)
        if cached is not None:
            return cached
        i = len(parts) - 1
        while i and parts[:i] not in self._cache:
            i -= 1
        fd = self._cache[parts[:i]] if i else self.fd
        owned = False
        try:
            for j in range(i, len(parts)):
                child = self._open_child(fd, parts[: j + 1], create=create)
                if owned:
                    os.close(fd)
                fd, owned = child, True
        except BaseException:
            if owned:
                os.close(fd)
            raise
        if len(self._cache) >= _CACHE_MAX:
            # Evict the oldest; closed at the next settle(), as it may be in use now.
            self._retired.append(self._cache.pop(next(iter(self._cache))))
        self._cache[parts] = fd
        return fd

    @staticmethod
    def _open_child(parent: int, parts: tuple[str, ...], *, create: bool) -> int:
        name = parts[-1]
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            os.fchmod(fd, 0o755)
            return fd
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeLayerError(
                    f"{'/'.join(parts)} is not a directory (symlink or file); "
                    "refusing to write through it"
                ) from err
            raise

    def _forget(self, parts: tuple[str, ...]) -> None:
        n = len(parts)
        for key in [k for k in self._cache if k[:n] == parts]:
            self._retired.append(self._cache.pop(key))

    def clear(self, parent: int, parts: tuple[str, ...], *, keep_dir: bool) -> bool:
        """Remove whatever is at ``parts`` (a directory only unless ``keep_dir``).

        Returns True when a directory is there and was kept.
        """
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self._forget(parts)
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        return False
