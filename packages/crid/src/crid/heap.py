"""glibc malloc settings that keep a long-lived crid's resident memory near what it uses.

Two things make a Python daemon's RSS climb and stay up after a burst of work (a pull,
fifty pods), measured with ``bench/crid/churn_memory.py``:

* every thread that allocates gets its own malloc arena (up to 8 per core), and freed
  memory stays in the arena it came from: worker threads (the asyncio executor, the
  unpack pool, the stats sampler, grpc's) each keep a few MiB of free chunks. crid
  allows one arena (:data:`ARENA_MAX`, set before any thread starts; a
  ``MALLOC_ARENA_MAX`` in the environment wins): with the GIL serializing most
  allocations there is little for threads to contend on, and one arena instead of two
  kept ~2 MiB less resident after a benchmark cycle and a churn, at no measured cost to
  CreateContainer or PullImage.
* glibc returns memory to the kernel only from the top of the main heap; free pages in
  the middle of an arena stay resident. :class:`HeapTrimmer` calls ``malloc_trim(0)``
  (which gives back every whole free page of every arena) after a burst, when more than
  :data:`TRIM_THRESHOLD` bytes were freed, checked every :data:`TRIM_INTERVAL` seconds;
  and once more when the heap has changed but no trim came for :data:`TRIM_SETTLE`
  seconds, for what a slow churn frees a little at a time (1.2-1.7 MiB at the end of an
  hour's churn of 20 pods).

Elsewhere than glibc (musl) the functions are absent and this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import time
from collections.abc import AsyncIterator

__all__ = [
    "ARENA_MAX",
    "TRIM_INTERVAL",
    "TRIM_SETTLE",
    "TRIM_THRESHOLD",
    "HeapTrimmer",
    "limit_arenas",
    "trim",
    "trimmed_heap",
    "usage",
]

_log = logging.getLogger(__name__)

#: Malloc arenas crid allows (glibc's default is 8 per core).
ARENA_MAX = 1
#: Seconds between two looks at the arenas' free bytes.
TRIM_INTERVAL = 5.0
#: Bytes freed by a burst above which crid gives whole free pages back to the kernel.
TRIM_THRESHOLD = 1 << 20
#: Seconds after the last trim when a heap that changed since is trimmed anyway.
TRIM_SETTLE = 60.0

_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> ctypes.CDLL | None:
    try:
        # dlopen(NULL): the C library already loaded (find_library would run ldconfig -p).
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not all(hasattr(libc, f) for f in ("mallopt", "malloc_trim", "mallinfo2")):
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


_LIBC = _libc()


def limit_arenas(arenas: int = ARENA_MAX) -> bool:
    """Cap glibc's malloc arenas (call before threads start); whether it was applied."""
    if _LIBC is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))


def usage() -> tuple[int, int]:
    """Bytes in use and bytes free inside the malloc arenas; (0, 0) off glibc.

    Free bytes include pages already given back by a trim (the chunks stay free).
    """
    if _LIBC is None:
        return 0, 0
    info = _LIBC.mallinfo2()
    return int(info.uordblks), int(info.fordblks)


def trim() -> bool:
    """Give every whole free page of every arena back to the kernel; whether any was."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


class HeapTrimmer:
    """Trims the heap after bursts, checked every ``interval`` seconds.

    It trims when the arenas gained more than ``threshold`` free bytes since the last
    trim, or the bytes in use fell by more than that from their highest: a burst of
    work ended. It also trims when ``settle`` seconds passed since the last trim and the
    heap moved since (by more than a sixteenth of ``threshold``): frees that trickle in
    below the threshold are given back within a minute. An idle crid, or one that holds
    steady, is left alone.
    """

    def __init__(
        self,
        *,
        interval: float = TRIM_INTERVAL,
        threshold: int = TRIM_THRESHOLD,
        settle: float = TRIM_SETTLE,
    ):
        self.interval = interval
        self.threshold = threshold
        self.settle = settle
        self.trims = 0
        used, free = usage()
        self._peak_used = used
        self._free_after_trim = free
        self._at_trim = (used, free)
        self._trimmed_at = time.monotonic()

    def check(self, now: float | None = None) -> bool:
        """Trim now if a burst ended or the heap settled; whether it trimmed.

        ``now``: the time.monotonic() to judge ``settle`` by (tests pass one)."""
        now = time.monotonic() if now is None else now
        used, free = usage()
        self._peak_used = max(self._peak_used, used)
        self._free_after_trim = min(self._free_after_trim, free)
        burst_ended = (
            free - self._free_after_trim > self.threshold or self._peak_used - used > self.threshold
        )
        moved = abs(used - self._at_trim[0]) + abs(free - self._at_trim[1])
        settled = now - self._trimmed_at >= self.settle and moved > self.threshold // 16
        if not (burst_ended or settled):
            return False
        started = time.perf_counter()
        trim()
        self.trims += 1
        used, free = usage()
        self._peak_used, self._free_after_trim = used, free
        self._at_trim, self._trimmed_at = (used, free), now
        _log.debug(
            "heap trimmed in_use=%d free=%d ms=%.2f",
            used,
            free,
            (time.perf_counter() - started) * 1000,
        )
        return True

    async def run(self) -> None:
        """Check forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self.interval)
            self.check()


@contextlib.asynccontextmanager
async def trimmed_heap(trimmer: HeapTrimmer | None = None) -> AsyncIterator[HeapTrimmer]:
    """Run ``trimmer`` (a default one when None) in the background while the body runs."""
    trimmer = trimmer or HeapTrimmer()
    if _LIBC is None:
        yield trimmer
        return
    task = asyncio.create_task(trimmer.run(), name="crid-heap-trimmer")
    try:
        yield trimmer
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
