"""Watching conmon's exit files: a container that exits is marked EXITED at once.

conmon writes ``<exits>/<id>`` when a container's process ends. The monitor polls the
directory (a listing of a small tmpfs directory every ``interval`` seconds, in a
thread) and records each new exit with its code, time and reason, which publishes
``CONTAINER_STOPPED``. Stop waits for the exit file itself, so the interval only bounds
how late an unprompted exit shows up in the Status and List RPCs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from crid.container.manager import Containers
from crid.state import ContainerState

__all__ = ["ExitMonitor"]

_log = logging.getLogger(__name__)


class ExitMonitor:
    """A task recording containers' exits from the exit directory."""

    def __init__(self, containers: Containers, *, interval: float = 0.1) -> None:
        self.containers = containers
        self.interval = interval
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
        registry = self.containers.ctx.registry
        directory = self.containers.ctx.layout.exits
        names = await asyncio.to_thread(_listing, str(directory))
        for name in names:
            record = registry.find_container(name) if len(name) == 64 else None
            if record is None or record.id != name:
                continue
            if record.state in (ContainerState.CREATED, ContainerState.RUNNING):
                await self.containers.record_exit(name)

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                _log.exception("exit monitor scan failed")
            await asyncio.sleep(self.interval)


def _listing(directory: str) -> list[str]:
    try:
        return [entry.name for entry in Path(directory).iterdir()]
    except FileNotFoundError:
        return []
