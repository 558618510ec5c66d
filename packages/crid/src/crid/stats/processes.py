"""What the processes of a cgroup hold open: cAdvisor's process metrics.

The processes are listed from ``cgroup.procs`` of the cgroup and every cgroup below it (a
pod's processes live in its containers' cgroups), then each one's ``/proc/<pid>``:
open file descriptors (and how many of them are sockets), threads, and the soft limit on
open files of the lowest pid (normally the container's init). A process that exits meanwhile is
skipped, never an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from crid.cgroups import Hierarchies

__all__ = ["ProcessDetails", "cgroup_pids", "max_open_files", "read_processes"]

_PID_HIERARCHIES = ("pids", "memory", "cpu", "cpuacct")


@dataclass(frozen=True, kw_only=True)
class ProcessDetails:
    """Counts over every process of a cgroup subtree."""

    processes: int
    threads: int
    file_descriptors: int
    sockets: int
    max_open_files: int | None = None  # soft RLIMIT_NOFILE of the lowest pid


def cgroup_pids(hierarchies: Hierarchies, cgroup: str) -> list[int]:
    """The processes of ``cgroup`` and of all cgroups below it, in pid order."""
    for controller in _PID_HIERARCHIES:
        directory = hierarchies.controller_path(controller, cgroup)
        if directory is not None:
            break
    else:
        return []
    found: set[int] = set()
    for current, _, _ in os.walk(directory):
        try:
            text = Path(current, "cgroup.procs").read_text()
        except OSError:
            continue
        found.update(int(line) for line in text.split() if line.isdigit())
    return sorted(found)


def max_open_files(limits_text: str) -> int | None:
    """The soft "Max open files" of a ``/proc/<pid>/limits`` text (None: unlimited/unknown)."""
    for line in limits_text.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files") :].split()[0]
            return int(soft) if soft.isdigit() else None
    return None


def _fds(pid: int) -> tuple[int, int]:
    fds = sockets = 0
    try:
        with os.scandir(f"/proc/{pid}/fd") as entries:
            for entry in entries:
                fds += 1
                try:
                    # raw os calls: this runs for every open file, every second
                    if os.readlink(entry.path).startswith("socket:"):  # noqa: PTH115
                        sockets += 1
                except OSError:
                    continue
    except OSError:
        pass
    return fds, sockets


def read_processes(pids: Iterable[int]) -> ProcessDetails:
    """Counts over ``pids`` (blocking reads of ``/proc``)."""
    processes = threads = fds = sockets = 0
    limit: int | None = None
    first = True
    for pid in pids:
        try:
            tasks = len(os.listdir(f"/proc/{pid}/task"))  # noqa: PTH208 - no Path objects
        except OSError:
            continue  # exited
        processes += 1
        threads += tasks
        opened, socks = _fds(pid)
        fds += opened
        sockets += socks
        if first:
            first = False
            try:
                limit = max_open_files(Path(f"/proc/{pid}/limits").read_text())
            except OSError:
                limit = None
    return ProcessDetails(
        processes=processes,
        threads=threads,
        file_descriptors=fds,
        sockets=sockets,
        max_open_files=limit,
    )
