"""Rollbacks that finish even when their RPC is cancelled, and that shutdown waits for.

A RunPodSandbox or CreateContainer that fails (or is cancelled when SIGTERM's grace
period ends) undoes what it made. The undo runs as its own task, shielded from the RPC's
cancellation; :meth:`Rollbacks.wait` lets the daemon finish those tasks before it closes
the state database and the store, so a clean stop leaves nothing half-made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

__all__ = ["Rollbacks"]


class Rollbacks:
    """The undo tasks still running."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[object]] = set()

    async def run(self, undo: Awaitable[object]) -> None:
        """Run ``undo`` to its end, even if the caller is cancelled meanwhile."""
        task = asyncio.ensure_future(undo)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every running undo; True if none is left."""
        pending = set(self._tasks)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=timeout)
        return not pending
