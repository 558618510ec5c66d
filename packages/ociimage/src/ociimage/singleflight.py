"""One task per key, shared by every caller that asks for the key while it runs.

ociimage downloads each blob once however many pulls want it at the same moment; crid
runs one pull for identical PullImage requests. A caller that is cancelled stops
waiting; the shared task is cancelled only when no caller waits for it any more.
Stdlib only, so importing it costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class _Flight(Generic[T]):
    """One running task and how many callers wait for it."""

    def __init__(self, task: asyncio.Task[T]) -> None:
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[K, T]):
    """Runs at most one task per key; see the module docs."""

    def __init__(self) -> None:
        self._flights: dict[K, _Flight[T]] = {}

    def in_flight(self, key: K) -> bool:
        """Whether a task for ``key`` is running (a caller now would join it)."""
        return key in self._flights

    async def run(self, key: K, start: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, bool]:
        """The result of ``key``'s task, starting it with ``start()`` if none runs, and
        whether this call started it (False: it joined another caller's task)."""
        flight = self._flights.get(key)
        owner = flight is None
        if flight is None:
            task = asyncio.ensure_future(start())
            new = _Flight(task)
            self._flights[key] = flight = new

            def forget(_task: asyncio.Task[T]) -> None:
                if self._flights.get(key) is new:
                    del self._flights[key]

            task.add_done_callback(forget)
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), owner
        except asyncio.CancelledError:
            if flight.waiters == 1:  # nobody else wants it: stop the work
                flight.task.cancel()
                await asyncio.gather(flight.task, return_exceptions=True)
            raise
        finally:
            flight.waiters -= 1
