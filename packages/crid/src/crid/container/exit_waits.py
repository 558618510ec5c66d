"""Waiting for an exit file without polling: the exit monitor wakes the waiters.

StopContainer and StopPodSandbox wait for conmon's ``<exits>/<id>``. The
:class:`~crid.container.monitor.ExitMonitor` already learns of every such file (inotify,
or its scans when it polls), so it calls :meth:`ExitWaits.wake` with the name and the
waiter checks again at once. A container marked lost (no exit file will come) is woken
by whoever marks it. While no monitor runs (before start-up finishes, after shutdown,
or a library user without one), waiters check every ``unwatched`` seconds instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["ExitWaits"]

#: Checks while no monitor runs: as often as the polls this replaced did.
UNWATCHED_CHECK = 0.005
#: Checks while a monitor runs: only a safety net (its scans catch a lost event too).
WATCHED_CHECK = 1.0


class ExitWaits:
    """Waiters for exit files, keyed by the file's name (a container's or pod's id)."""

    def __init__(
        self, *, unwatched: float = UNWATCHED_CHECK, watched: float = WATCHED_CHECK
    ) -> None:
        self.unwatched = unwatched
        self.watched = watched
        #: How many monitors run now (each sets it while its inotify watch or poll runs).
        self.monitors = 0
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def wake(self, name: str) -> None:
        """Something happened to ``name`` (its exit file appeared, or it was marked lost)."""
        for future in self._waiters.pop(name, ()):
            if not future.done():
                future.set_result(None)

    async def wait(self, name: str, timeout: float, done: Callable[[], bool]) -> bool:
        """Until ``done()`` (one stat: exit file present, or the record says exited);
        False after ``timeout`` seconds.

        The waiter is registered before each check, so an exit that lands between the
        check and the wait still wakes it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            waiters = self._waiters.setdefault(name, set())
            waiters.add(future)
            try:
                if done():
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                step = self.watched if self.monitors else self.unwatched
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(future, min(step, remaining))
            finally:
                waiters.discard(future)
                if not waiters and self._waiters.get(name) is waiters:
                    del self._waiters[name]
