"""Noticing at once when a container's conmon exits, through a pidfd per conmon.

conmon writes the exit file and then exits; a conmon that exits without one died
(killed, crashed) and left its container unmonitored: no log, no exit code, no attach.
conmon is not crid's child (it daemonizes), so its exit is watched with
``pidfd_open``: the descriptor turns readable when the process ends, and the event loop
wakes on it without polling. The callback decides what the exit means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

__all__ = ["ConmonWatch"]

_log = logging.getLogger(__name__)


def _is_conmon_of(pid: int, container_id: str) -> bool:
    """Whether ``pid`` still runs conmon for ``container_id`` (a reused pid does not)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().split(b"\0")
    except OSError:
        return False
    return container_id.encode() in args


class ConmonWatch:
    """One pidfd per watched conmon; ``on_exit(container_id)`` runs when it ends."""

    def __init__(self, on_exit: Callable[[str], Awaitable[object]]) -> None:
        self._on_exit = on_exit
        self._fds: dict[str, int] = {}
        self._tasks: set[asyncio.Task[object]] = set()

    def __contains__(self, container_id: str) -> bool:
        return container_id in self._fds

    def add(self, container_id: str, conmon_pid: int) -> None:
        """Watch ``conmon_pid``; one already gone (or not conmon any more) fires at once."""
        if container_id in self._fds:
            return
        fd = -1
        if conmon_pid > 0:
            with contextlib.suppress(OSError):
                fd = os.pidfd_open(conmon_pid)
        if fd >= 0 and not _is_conmon_of(conmon_pid, container_id):
            os.close(fd)
            fd = -1
        if fd < 0:
            self._fire(container_id)
            return
        self._fds[container_id] = fd
        asyncio.get_running_loop().add_reader(fd, self._exited, container_id)

    def discard(self, container_id: str) -> None:
        """Stop watching (the container is being removed)."""
        fd = self._fds.pop(container_id, None)
        if fd is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _exited(self, container_id: str) -> None:
        self.discard(container_id)
        self._fire(container_id)

    def _fire(self, container_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._call(container_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, container_id: str) -> None:
        try:
            await self._on_exit(container_id)
        except Exception:
            _log.exception("handling the exit of conmon of %s failed", container_id)

    async def close(self) -> None:
        """Stop every watch and wait for callbacks already running."""
        for container_id in list(self._fds):
            self.discard(container_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
