"""The store directory lock: one process at a time owns a store."""

from __future__ import annotations

import fcntl
import logging
import os
import time

from ocistore.errors import StoreLockedError

__all__ = ["DirectoryLock"]

log = logging.getLogger(__name__)


class DirectoryLock:
    """An exclusive ``flock`` on ``<root>/lock`` held while a :class:`Store` is open.

    flock locks die with the process, so a crashed owner never leaves the store locked.
    A second opener polls until ``timeout`` seconds passed, then raises
    :class:`StoreLockedError` naming the holder's pid.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise StoreLockedError(
                        f"store lock {self._path} is held by process {holder} (waited {timeout:g}s)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        log.debug("locked store lock=%s", self._path)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
