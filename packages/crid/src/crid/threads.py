"""Blocking work in a worker thread that a cancelled caller still waits for."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from typing import TypeVar

__all__ = ["run_to_completion"]

_T = TypeVar("_T")


async def run_to_completion(work: Callable[[], _T]) -> _T:
    """``work()`` in a worker thread; a cancelled caller still waits for it to end.

    A thread cannot be stopped: were the caller to go on at once, its undo would remove
    a root filesystem (or a pod's pins, files, cgroup) while the thread is still making
    it, and leak it.
    """
    call = functools.partial(contextvars.copy_context().run, work)
    future = asyncio.get_running_loop().run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future})
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller sees
        raise
