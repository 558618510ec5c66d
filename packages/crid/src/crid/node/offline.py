"""The daemon's lock, taken by offline commands so that no crid starts meanwhile.

``crid serve`` holds an exclusive ``flock`` on ``<socket>.lock`` for its whole life
(:class:`crid.server.Daemon`). ``crid check`` and ``crid wipe`` take the same lock:
failing to get it means a daemon runs, and holding it keeps one from starting while
storage is being changed underneath it.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from crid.config import Config
from crid.errors import SocketInUseError

__all__ = ["daemon_lock", "daemon_lock_path"]


def daemon_lock_path(config: Config) -> Path:
    """The lock file beside the CRI socket."""
    socket_path = Path(config.crid.api.listen)
    return socket_path.with_name(socket_path.name + ".lock")


@contextlib.contextmanager
def daemon_lock(config: Config) -> Iterator[None]:
    """Hold the daemon's lock; :class:`SocketInUseError` when a daemon holds it."""
    path = daemon_lock_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise SocketInUseError(f"crid is running (it holds {path}): stop it first") from err
        yield
