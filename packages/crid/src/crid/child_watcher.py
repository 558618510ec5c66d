"""Waiting for child processes through pidfds instead of a thread per child.

Every conmon, runc and CNI plugin crid runs is an asyncio subprocess. Python 3.11's
default child watcher (``ThreadedChildWatcher``) starts a thread per child to block in
``waitpid``, and starting a thread waits until that thread has taken the GIL: under
load, ``create_subprocess_exec`` took 19 ms median (p90 71 ms) for that alone. A pidfd
(Linux 5.3+) becomes readable when the child exits, so the event loop itself waits for
it, with no thread. The stdlib's ``PidfdChildWatcher`` of 3.11 does this but is bound to
one loop (the main thread's), so a subprocess started on another loop (``asyncio.run``
in a worker thread, a test's own loop) would be registered on the wrong one.
:class:`PidfdWatcher` registers each child on the loop that started it, as 3.12's
default does; it keeps no state, so any number of loops in any threads may use it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVarTuple

__all__ = ["PidfdWatcher", "install_child_watcher", "pidfd_supported"]

_log = logging.getLogger(__name__)
_install_lock = threading.Lock()
_Ts = TypeVarTuple("_Ts")


def pidfd_supported() -> bool:
    """True when the kernel and Python both offer ``pidfd_open``."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


class PidfdWatcher(asyncio.AbstractChildWatcher):
    """Reaps each child when its pidfd turns readable on the loop that spawned it."""

    def add_child_handler(
        self, pid: int, callback: Callable[[int, int, *_Ts], object], *args: *_Ts
    ) -> None:
        """Called by asyncio, on the running loop, right after the child was forked."""
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, self._reap, loop, pid, pidfd, callback, args)

    @staticmethod
    def _reap(
        loop: asyncio.AbstractEventLoop,
        pid: int,
        pidfd: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
    ) -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # someone else reaped it: the status is lost
            _log.warning("child %d was reaped elsewhere: reporting exit status 255", pid)
            code = 255
        else:
            code = os.waitstatus_to_exitcode(status)
        callback(pid, code, *args)

    def remove_child_handler(self, pid: int) -> bool:
        """asyncio never calls this for a child it started; nothing is tracked."""
        return False

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Not bound to a loop: each child is watched on the loop that started it."""

    def close(self) -> None:
        """Nothing to release: every registration ends with its child."""

    def is_active(self) -> bool:
        return True

    def __enter__(self) -> PidfdWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def install_child_watcher() -> bool:
    """Make :class:`PidfdWatcher` the process's child watcher; True if it is in place.

    Process-wide and idempotent. Python 3.12+ already waits on pidfds by default, and
    without pidfd support the default watcher stays: both return False.
    """
    if sys.version_info >= (3, 12) or not pidfd_supported():
        return False
    with _install_lock:
        policy = asyncio.get_event_loop_policy()
        if not isinstance(policy, asyncio.DefaultEventLoopPolicy):
            return False  # someone else's policy (uvloop, a test's): theirs to choose
        if isinstance(policy.get_child_watcher(), PidfdWatcher):
            return True
        # The threaded watcher's threads already waiting keep waiting and report to
        # their loops as before; only children started from now on use pidfds.
        policy.set_child_watcher(PidfdWatcher())
    return True
