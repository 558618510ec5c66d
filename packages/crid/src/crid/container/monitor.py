"""Watching conmon's exit files: a container that exits is marked EXITED at once.

conmon writes ``<exits>/<id>`` when a container's process ends. The monitor watches the
directory with inotify (the ``asyncinotify`` package: no thread, no polling) and records
each new exit with its code, time and reason, which publishes ``CONTAINER_STOPPED``. A
full scan runs at start, after an inotify queue overflow, and every ``rescan`` seconds
as a safety net; without inotify it falls back to scanning every ``interval`` seconds.
Every exit file it sees (event or scan) first wakes the stops waiting for it
(:class:`~crid.container.exit_waits.ExitWaits`), containers' and infra containers' alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from asyncinotify import Inotify, Mask

from crid.container.manager import Containers
from crid.state import ContainerState

__all__ = ["ExitMonitor"]

_log = logging.getLogger(__name__)


class ExitMonitor:
    """A task recording containers' exits from the exit directory."""

    def __init__(
        self,
        containers: Containers,
        *,
        interval: float = 0.1,
        rescan: float = 30.0,
        other_exit: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        """``other_exit`` is called with the name of an exit file no container record
        owns (a pod's infra container writes its exit under the pod's id)."""
        self.containers = containers
        self.other_exit = other_exit
        self.interval = interval
        self.rescan = rescan
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="crid-exit-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def scan(self) -> None:
        """Record every exit file of a container still marked created or running."""
        directory = self.containers.ctx.layout.exits
        for name in await asyncio.to_thread(_listing, str(directory)):
            await self._exited(name)

    async def _exited(self, name: str) -> None:
        self.containers.exit_waits.wake(name)
        record = self.containers.ctx.registry.find_container(name) if len(name) == 64 else None
        if record is None or record.id != name:
            if self.other_exit is not None and len(name) == 64:
                await self.other_exit(name)
            return
        if record.state in (ContainerState.CREATED, ContainerState.RUNNING):
            await self.containers.record_exit(name)

    async def _run(self) -> None:
        waits = self.containers.exit_waits
        waits.monitors += 1
        try:
            await self._watch()
        finally:
            waits.monitors -= 1

    async def _watch(self) -> None:
        directory = self.containers.ctx.layout.exits
        try:
            inotify = Inotify()
            inotify.add_watch(directory, Mask.CLOSE_WRITE | Mask.MOVED_TO)
        except OSError as err:
            _log.warning("exit monitor polls: inotify unavailable", extra={"error": str(err)})
            await self._poll()
            return
        with inotify:
            await self._safe_scan()
            while True:
                try:
                    event = await asyncio.wait_for(inotify.get(), self.rescan)
                except TimeoutError:
                    await self._safe_scan()
                    continue
                if event.mask & Mask.Q_OVERFLOW:
                    await self._safe_scan()
                elif event.name is not None:
                    try:
                        await self._exited(event.name.name)
                    except Exception:
                        _log.exception("recording an exit failed")

    async def _safe_scan(self) -> None:
        try:
            await self.scan()
        except Exception:
            _log.exception("exit monitor scan failed")

    async def _poll(self) -> None:
        while True:
            await self._safe_scan()
            await asyncio.sleep(self.interval)


def _listing(directory: str) -> list[str]:
    try:
        return [entry.name for entry in Path(directory).iterdir()]
    except FileNotFoundError:
        return []
