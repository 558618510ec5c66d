"""Cgroups for the cgroupfs driver: where they are, pod cgroups, and usage statistics."""

from __future__ import annotations

from crid.cgroups.details import (
    BlkioEntry,
    CgroupDetails,
    CpuDetails,
    HugetlbUsage,
    MemoryDetails,
    PressureDetails,
    SpecDetails,
    read_details,
)
from crid.cgroups.hierarchy import Hierarchies, container_cgroup_path
from crid.cgroups.stats import CgroupStats, oom_kills, read_stats

__all__ = [
    "BlkioEntry",
    "CgroupDetails",
    "CgroupStats",
    "CpuDetails",
    "Hierarchies",
    "HugetlbUsage",
    "MemoryDetails",
    "PressureDetails",
    "SpecDetails",
    "container_cgroup_path",
    "oom_kills",
    "read_details",
    "read_stats",
]
