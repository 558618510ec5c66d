"""Signalling a container's init process without spawning the OCI runtime.

``runc kill <id> <signal>`` looks the init's pid up in its state and sends it one
signal: a process of 5-7 ms on every StopContainer and StopPodSandbox. crid knows that
pid already (conmon reports it at create), so it signals the init itself, unless:

* The signal is SIGKILL and the container shares the pod's or the node's PID namespace.
  Killing its init then leaves its other processes alive, and runc 1.2 and later kill
  every process of such a container; that is left to the runtime. Any other signal is
  sent to the init alone by every runc, and so by crid; a container with a PID namespace
  of its own dies whole with its init.
* The pid may no longer name the process conmon reported. A pid is reused once its
  process is reaped, so crid records the init's start time (``/proc/<pid>/stat``, field
  22, fixed for the life of the process, across ``execve``) at create, as CRI-O does. At
  signal time a pidfd is opened *first*, then the start time read: a match proves the
  process held the pid from before the pidfd was opened until after, so the pidfd names
  it, and the signal goes through the pidfd, which can reach no other process.

Anything unexpected (no start time recorded, a different process under that pid, /proc
unreadable) returns False too: the caller asks the runtime, which answers for a
container that is gone. These are a few syscalls on files of /proc, which never wait on
a disk: they are made on the calling thread.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocispec.runtime import Spec

__all__ = [
    "init_start_time",
    "shares_pid_namespace",
    "signal_checked",
    "signal_init",
    "start_time",
]

#: Indexes of the parent's pid and of the start time among the fields after the command
#: name (fields 4 and 22: the name is field 2, the state field 3).
_PARENT_FIELD = 1
_START_FIELD = 19


def _stat(pid: int) -> tuple[int, int]:
    """``pid``'s parent and start time (clock ticks after boot); zeros if unreadable."""
    if pid <= 0:
        return 0, 0
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0, 0
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[_PARENT_FIELD]), int(fields[_START_FIELD])
    except (IndexError, ValueError):
        return 0, 0


def start_time(pid: int) -> int:
    """``pid``'s start time in clock ticks after boot; 0 when it cannot be read."""
    return _stat(pid)[1]


def init_start_time(pid: int, conmon_pid: int) -> int:
    """What to record at create: the start time of the init ``pid``, read while the
    process is still the child of its ``conmon_pid`` (conmon is the subreaper of the
    container's init), so that it cannot be another process that took over the pid of an
    init that died at once; 0 (the runtime signals it) otherwise."""
    parent, started = _stat(pid)
    return started if conmon_pid > 0 and parent == conmon_pid else 0


def shares_pid_namespace(spec: Spec) -> bool:
    """Whether a container run from ``spec`` joins a PID namespace (the pod's, another
    container's) or stays in the node's, rather than having one of its own."""
    if spec.linux is None:
        return True
    namespace = spec.linux.namespace("pid")
    return namespace is None or bool(namespace.path)


def signal_init(pid: int, started: int, signum: int, *, shared_namespace: bool) -> bool:
    """Send ``signum`` to the init ``pid`` that started at ``started`` (clock ticks).

    True when it was sent, or when the process ended between the check and the signal;
    False when the runtime must be asked: SIGKILL for a container in a shared PID
    namespace (``shared_namespace``), or when ``pid`` cannot be told to be that process.
    """
    if pid <= 0 or started <= 0 or (shared_namespace and signum == signal.SIGKILL):
        return False
    return signal_checked(pid, signum, lambda: start_time(pid) == started)


def signal_checked(pid: int, signum: int, still_it: Callable[[], bool]) -> bool:
    """Send ``signum`` to ``pid`` through a pidfd if ``still_it()`` holds once the pidfd
    is open: a check made then proves the pidfd names the process checked, so a reused
    pid is never signalled.

    True when it was sent, or when the process ended after the check; False when no
    pidfd could be opened (gone already, or no pidfds here) or the check failed.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if not still_it():
            return False  # another process has the pid now, or it is being reaped
        signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        return True  # it ended after the check: nothing is left to signal
    except OSError:
        return False
    finally:
        os.close(pidfd)
    return True
