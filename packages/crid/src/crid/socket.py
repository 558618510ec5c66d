"""The CRI unix socket: made safe to bind, and never stolen from a live daemon."""

from __future__ import annotations

import errno
import logging
import socket
import stat
from pathlib import Path

from crid.errors import CridError, SocketInUseError

__all__ = ["SOCKET_MODE", "prepare_socket"]

SOCKET_MODE = 0o660
_log = logging.getLogger(__name__)


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as err:
        if err.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise CridError(f"cannot probe existing socket {path}: {err.strerror}") from err
    finally:
        probe.close()
    return True


def prepare_socket(path: Path, *, parent_mode: int = 0o777) -> None:
    """Create the socket's parent directories (``parent_mode``, less the umask) and clear
    a stale socket file.

    A socket file left by a dead daemon is removed; one that still answers belongs to a
    live process, and is refused with :class:`SocketInUseError`. Anything that is not a
    socket is never removed. Used for the CRI socket and NRI's.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=parent_mode)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise CridError(f"{path} exists and is not a socket; refusing to replace it")
    if _answers(path):
        raise SocketInUseError(
            f"another process is already serving on {path}; stop it or configure another"
            " [crid.api] listen path"
        )
    _log.info("removing stale socket", extra={"path": str(path)})
    path.unlink(missing_ok=True)
