"""ReopenContainerLog: ask the container's conmon to reopen its log file (log rotation).

conmon listens on a FIFO named ``ctl`` in the bundle directory for lines of three
integers, ``<type> <height> <width>``; type 2 reopens the log file at ``--log-path``
(type 1 is a terminal resize). The kubelet renames the log file, then calls this RPC, so
crid waits until conmon has created the new file: when the call returns, new lines land
at the original path.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

from crid.errors import ContainerNotRunningError
from crid.state import Container, ContainerState

__all__ = ["REOPEN_LOG_MESSAGE", "reopen_container_log"]

REOPEN_LOG_MESSAGE = b"2 0 0\n"


def _send(ctl: Path, container_id: str) -> None:
    try:
        fd = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENXIO):
            raise ContainerNotRunningError(
                f"container {container_id}: its conmon is gone ({ctl}: {err.strerror})"
            ) from err
        raise
    try:
        os.write(fd, REOPEN_LOG_MESSAGE)
    finally:
        os.close(fd)


async def reopen_container_log(container: Container, bundle: Path, *, timeout: float = 5.0) -> None:
    """Have conmon reopen ``container``'s log and wait for the file to exist again."""
    if container.state != ContainerState.RUNNING:
        raise ContainerNotRunningError(
            f"container {container.id} is {container.state.value}: only a running container's"
            " log can be reopened"
        )
    await asyncio.to_thread(_send, bundle / "ctl", container.id)
    if not container.log_path:
        return
    log = Path(container.log_path)
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(log.exists):
        if asyncio.get_running_loop().time() > deadline:
            raise ContainerNotRunningError(
                f"container {container.id}: conmon did not reopen {log} within {timeout:g}s"
            )
        await asyncio.sleep(0.005)
