"""A pod's shared PID namespace, pinned and held open without an infra container.

A PID namespace takes new processes only while its init (PID 1) lives, so a pinned
file is not enough: a holder (``catatonit -P``, started by util-linux ``unshare
--pid=<pin> --fork --kill-child``) is PID 1 of the namespace for the pod's lifetime,
and every container of the pod joins the pinned namespace. PID 1 must behave as a
pause process does: reap the orphans that the pod's containers leave behind (else they
stay zombies for the pod's life) and not look like a workload process (``pgrep sleep``
in a container must not find it, as the CRI conformance suite checks). catatonit's pause
mode (Debian's ``catatonit``, podman's pause process) does both. The holder is detached
(``setsid --fork``), so it outlives crid restarts like conmon does; it is found again
through its pin when the pod is removed.

The namespace's init is asked of the kernel (``NS_GET_TGID_FROM_PIDNS``, Linux 6.7): one
``ioctl`` on the pin, where older kernels need a scan of every process in ``/proc`` (a
stat each, 13 µs here: tens of milliseconds on a node with thousands of processes).
Killing the init is enough to empty the namespace: the kernel kills every other
process in it when its init dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from crid.errors import CridError
from crid.oci.init_signal import signal_checked
from ocinet import remove_namespace
from ocinet.netns import Namespace, NamespaceKind

__all__ = ["pin_pid_namespace", "release_pid_namespace"]

_TIMEOUT = 5.0
#: ``_IOR(NSIO, 0x7, int)``: on a PID namespace, the pid (in ours) of its process ``arg``.
_NS_GET_TGID_FROM_PIDNS = (2 << 30) | (4 << 16) | (0xB7 << 8) | 0x7


class _NoTranslationError(Exception):
    """The kernel cannot translate pids between namespaces (before Linux 6.7)."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CridError(f"a shared pod PID namespace needs {name!r} in PATH")
    return found


def _pinned(path: Path) -> bool:
    return Namespace(kind=NamespaceKind.NET, path=path).is_pinned()


def pin_pid_namespace(path: Path) -> None:
    """Create a PID namespace with its holder and pin it at ``path`` (blocking)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch()
    argv = [
        _binary("setsid"),
        "--fork",
        _binary("unshare"),
        f"--pid={path}",
        "--fork",
        "--kill-child",
        _binary("catatonit"),
        "-P",
    ]
    # No pipes: the detached holder would keep them open. ``setsid --fork`` returns at
    # once; whether unshare succeeded shows in the pin becoming a namespace.
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=_TIMEOUT,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
    )
    if done.returncode != 0:
        path.unlink(missing_ok=True)
        raise CridError(f"cannot start the pod PID namespace holder (exit {done.returncode})")
    deadline = time.monotonic() + _TIMEOUT
    while not (_pinned(path) and _has_init(path)):
        if time.monotonic() > deadline:
            release_pid_namespace(path)
            raise CridError(f"the pod PID namespace at {path} never came up")
        time.sleep(0.001)


def _init_pid(path: Path) -> int | None:
    """The pid of the pinned namespace's init, None when it has none (yet, or any more).
    Raises :class:`_NoTranslationError` on a kernel that cannot tell."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, _NS_GET_TGID_FROM_PIDNS, 1)
    except OSError as err:
        if err.errno == errno.ESRCH:
            return None
        if err.errno in (errno.ENOTTY, errno.EINVAL):
            raise _NoTranslationError from err
        raise
    finally:
        os.close(fd)


def _has_init(path: Path) -> bool:
    try:
        return _init_pid(path) is not None
    except _NoTranslationError:
        return bool(_holders(path))


def _kill_init(path: Path) -> None:
    """SIGKILL the namespace's init through a pidfd, so that a pid number reused after
    the init died is never signalled: the pidfd is used only if the namespace's init
    still has that number once it is open (a namespace never gets another init)."""
    pid = _init_pid(path)
    if pid is not None:
        signal_checked(pid, signal.SIGKILL, lambda: _init_pid(path) == pid)


def _holders(path: Path) -> list[int]:
    """Pids of the processes inside the pinned namespace (a scan of ``/proc``)."""
    try:
        inode = path.stat().st_ino
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry.name}/ns/pid").stat().st_ino == inode:
                    found.append(int(entry.name))
    return found


def release_pid_namespace(path: Path) -> None:
    """Kill every process left in the namespace, then remove the pin (idempotent)."""
    if _pinned(path):
        try:
            _kill_init(path)
        except _NoTranslationError:
            for pid in _holders(path):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    remove_namespace(path)
