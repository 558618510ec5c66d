"""Resource usage of a cgroup, read from cgroup v1 or v2 files, as the CRI reports it.

The kubelet takes pod and container stats from the CRI (not cAdvisor) for runtimes other
than CRI-O, and evicts on them: the working set is usage minus inactive file pages,
exactly as cAdvisor computes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from crid.cgroups._files import cgroup_file as _file
from crid.cgroups._files import read_int as _read_int
from crid.cgroups._files import read_keyed as _read_keyed
from crid.cgroups.hierarchy import Hierarchies

__all__ = ["CgroupStats", "memory_limit", "oom_kills", "read_stats"]


@dataclass(frozen=True, kw_only=True)
class CgroupStats:
    """One sample of a cgroup's usage."""

    timestamp_ns: int
    cpu_usage_ns: int | None = None
    memory_usage_bytes: int | None = None
    memory_working_set_bytes: int | None = None
    memory_rss_bytes: int | None = None
    page_faults: int | None = None
    major_page_faults: int | None = None
    process_count: int | None = None


#: What the stats take of ``memory.stat`` (v2, then v1's hierarchical totals).
_V2_MEMORY = frozenset({"inactive_file", "anon", "pgfault", "pgmajfault"})
_V1_MEMORY = frozenset({"total_inactive_file", "total_rss", "total_pgfault", "total_pgmajfault"})


def read_stats(hierarchies: Hierarchies, cgroup: str) -> CgroupStats:
    """Sample ``cgroup`` (blocking reads of a few small files)."""
    now = time.time_ns()
    if hierarchies.unified:
        cpu = _read_keyed(_file(hierarchies, "cpu", cgroup, "cpu.stat"))
        memory = _read_keyed(_file(hierarchies, "memory", cgroup, "memory.stat"), _V2_MEMORY)
        usage = _read_int(_file(hierarchies, "memory", cgroup, "memory.current"))
        inactive = memory.get("inactive_file", 0)
        return CgroupStats(
            timestamp_ns=now,
            cpu_usage_ns=cpu["usage_usec"] * 1000 if "usage_usec" in cpu else None,
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(usage - inactive, 0) if usage is not None else None,
            memory_rss_bytes=memory.get("anon"),
            page_faults=memory.get("pgfault"),
            major_page_faults=memory.get("pgmajfault"),
            process_count=_read_int(_file(hierarchies, "pids", cgroup, "pids.current")),
        )
    memory = _read_keyed(_file(hierarchies, "memory", cgroup, "memory.stat"), _V1_MEMORY)
    usage = _read_int(_file(hierarchies, "memory", cgroup, "memory.usage_in_bytes"))
    inactive = memory.get("total_inactive_file", 0)
    return CgroupStats(
        timestamp_ns=now,
        cpu_usage_ns=_read_int(_file(hierarchies, "cpuacct", cgroup, "cpuacct.usage")),
        memory_usage_bytes=usage,
        memory_working_set_bytes=max(usage - inactive, 0) if usage is not None else None,
        memory_rss_bytes=memory.get("total_rss"),
        page_faults=memory.get("total_pgfault"),
        major_page_faults=memory.get("total_pgmajfault"),
        process_count=_read_int(_file(hierarchies, "pids", cgroup, "pids.current")),
    )


def oom_kills(hierarchies: Hierarchies, cgroup: str) -> int:
    """How many processes the OOM killer ended in ``cgroup`` (0 when unknown)."""
    if hierarchies.unified:
        events = _read_keyed(_file(hierarchies, "memory", cgroup, "memory.events"))
    else:
        events = _read_keyed(_file(hierarchies, "memory", cgroup, "memory.oom_control"))
    return events.get("oom_kill", 0)


# cgroup v1 reports "no limit" as the largest page-aligned 64-bit value.
_UNLIMITED = 1 << 62


def memory_limit(hierarchies: Hierarchies, cgroup: str) -> int | None:
    """The memory limit of ``cgroup`` in bytes, or None when unlimited or unknown."""
    name = "memory.max" if hierarchies.unified else "memory.limit_in_bytes"
    value = _read_int(_file(hierarchies, "memory", cgroup, name))  # v2's "max" is None
    return value if value is not None and value < _UNLIMITED else None
