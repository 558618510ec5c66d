"""Blocking work in a worker thread that a cancelled caller still waits for.

:func:`run_to_completion` starts the work and awaits it. A caller with event-loop work
of its own to do meanwhile (CreateContainer forks conmon while its root filesystem is
made) starts it with :func:`start_in_thread`, goes on, and then awaits
:func:`completion`, or :func:`settled` on its failure path before it undoes anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["completion", "run_to_completion", "settled", "start_in_thread"]

_T = TypeVar("_T")


def start_in_thread(work: Callable[[], _T]) -> asyncio.Future[_T]:
    """Start ``work()`` in a worker thread now (with the caller's context variables).

    The future must be awaited through :func:`completion` or :func:`settled`: a thread
    cannot be stopped, so cancelling the future would not stop the work.
    """
    call = functools.partial(contextvars.copy_context().run, work)
    return asyncio.get_running_loop().run_in_executor(None, call)


async def completion(future: asyncio.Future[_T]) -> _T:
    """The result of work started by :func:`start_in_thread`; a cancelled caller still
    waits for the thread to end before the cancellation reaches it.

    Were the caller to go on at once, its undo would remove a root filesystem (or a
    pod's pins, files, cgroup) while the thread is still making it, and leak it.
    """
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await settled(future)
        raise


async def settled(future: asyncio.Future[_T], timeout: float | None = None) -> bool:
    """Wait until the work behind ``future`` (a thread, a child process) has ended,
    however it ended (its error, if any, is retrieved, not raised); False if
    ``timeout`` seconds passed first.

    Meant for failure paths that raise afterwards (the error or cancellation they are
    handling): a cancellation that arrives meanwhile does not cut the wait short, and is
    not raised here.
    """
    limit = None if timeout is None else time.monotonic() + timeout
    while not future.done():
        remaining = None if limit is None else limit - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future}, timeout=remaining)
    if not future.cancelled():
        future.exception()
    return True


async def run_to_completion(work: Callable[[], _T]) -> _T:
    """``work()`` in a worker thread; a cancelled caller still waits for it to end."""
    return await completion(start_in_thread(work))
