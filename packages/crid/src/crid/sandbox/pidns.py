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
by the namespace's inode when the pod is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from crid.errors import CridError
from ocinet import remove_namespace
from ocinet.netns import Namespace, NamespaceKind

__all__ = ["pin_pid_namespace", "release_pid_namespace"]

_TIMEOUT = 5.0


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
    while not (_pinned(path) and _holders(path)):
        if time.monotonic() > deadline:
            release_pid_namespace(path)
            raise CridError(f"the pod PID namespace at {path} never came up")
        time.sleep(0.001)


def _holders(path: Path) -> list[int]:
    """Pids of the processes inside the pinned namespace."""
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
        for pid in _holders(path):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    remove_namespace(path)
