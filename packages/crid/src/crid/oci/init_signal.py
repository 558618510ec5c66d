"""Signalling a container's init process without spawning the OCI runtime.

``runc kill <id> <signal>`` (runc 1.1) looks the init's pid up in its state and sends
one signal: a process of 5-7 ms on every StopContainer and StopPodSandbox. crid knows
that pid already (conmon reports it at create), so it signals the init itself when two
things hold:

* The container has a PID namespace of its own. Killing its init then ends every
  process of the container, as ``runc kill`` does. A container sharing the pod's or the
  node's PID namespace is left to the runtime, whatever its version does for those.
* The pid still names the process conmon reported. A pid is reused once its process is
  reaped, so crid records the init's start time (``/proc/<pid>/stat``, field 22, fixed
  for the life of the process, across ``execve``) at create, as CRI-O does. At signal
  time a pidfd is opened *first*, then the start time read: a match proves the process
  held the pid from before the pidfd was opened until after, so the pidfd names it, and
  the signal goes through the pidfd, which can reach no other process.

Anything else (no start time recorded, a different process under that pid, /proc
unreadable) returns False: the caller asks the runtime, which answers for a container
that is gone. These are a few syscalls on files of /proc, which never wait on a disk:
they are made on the calling thread.
"""

from __future__ import annotations

import os
import signal

from ocispec.runtime import Spec

__all__ = ["init_start_time", "signal_init", "start_time"]

#: Index of the start time among the fields after the command name (field 22 is the
#: 20th after it: the name is field 2, the state field 3).
_START_FIELD = 19


def start_time(pid: int) -> int:
    """``pid``'s start time in clock ticks after boot; 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[_START_FIELD])
    except (IndexError, ValueError):
        return 0


def _own_pid_namespace(spec: Spec) -> bool:
    if spec.linux is None:
        return False
    namespace = spec.linux.namespace("pid")
    return namespace is not None and not namespace.path


def init_start_time(spec: Spec, pid: int) -> int:
    """What to record at create for :func:`signal_init`: the start time of the init
    ``pid`` of a container run from ``spec``, or 0 (the runtime signals it) when the
    container shares a PID namespace or the time cannot be read."""
    if pid <= 0 or not _own_pid_namespace(spec):
        return 0
    return start_time(pid)


def signal_init(pid: int, started: int, signum: int) -> bool:
    """Send ``signum`` to the init ``pid`` that started at ``started`` (clock ticks).

    True when it was sent, or when the process ended between the check and the signal;
    False when it cannot be told that ``pid`` is that process: ask the runtime then.
    """
    if pid <= 0 or started <= 0:
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False  # gone already, or no pidfds here
    try:
        if start_time(pid) != started:
            return False  # another process has the pid now, or it is being reaped
        signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        return True  # it ended after the check: nothing is left to signal
    except OSError:
        return False
    finally:
        os.close(pidfd)
    return True
