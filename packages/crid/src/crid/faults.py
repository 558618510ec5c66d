"""Named fault points for crid's fault-injection tests; inert unless a test enables them.

A test starts ``crid serve`` with ``CRID_FAULT_POINTS`` naming a file of lines
``<point> kill`` or ``<point> pause <seconds>``. When crid reaches a point listed there it
appends the point's name to ``<file>.reached`` (so the test knows where crid is), then kills
itself with SIGKILL, or sleeps (an RPC held in flight while the test sends SIGTERM). The
file is read at each listed point, so a test changes the faults between restarts without
new environments. Without the variable, :func:`point` and :func:`hit` return at once.
The points are listed in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

__all__ = ["ENV", "enabled", "hit", "point"]

#: The environment variable naming the faults file; only tests set it.
ENV = "CRID_FAULT_POINTS"
_FILE = os.environ.get(ENV, "")


def enabled() -> bool:
    """Whether this process was started with fault points enabled."""
    return bool(_FILE)


def _planned(name: str) -> float | None:
    """Seconds to pause at ``name`` (-1: kill), None when the point is not listed."""
    try:
        lines = Path(_FILE).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        words = line.split()
        if words and words[0] == name:
            if words[1:2] == ["kill"]:
                _reached(name)
                os.kill(os.getpid(), signal.SIGKILL)
            if words[1:2] == ["pause"] and len(words) == 3:
                _reached(name)
                return float(words[2])
    return None


def _reached(name: str) -> None:
    with open(f"{_FILE}.reached", "a") as handle:
        handle.write(name + "\n")


def hit(name: str) -> None:
    """A fault point in blocking code (a worker thread)."""
    if _FILE:
        seconds = _planned(name)
        if seconds is not None:
            time.sleep(seconds)


async def point(name: str) -> None:
    """A fault point in async code; a pause here can be cancelled like any await."""
    if _FILE:
        seconds = await asyncio.to_thread(_planned, name)
        if seconds is not None:
            await asyncio.sleep(seconds)
