"""Cgroups for the cgroupfs driver: where they are, pod cgroups, and usage statistics."""

from __future__ import annotations

from crid.cgroups.controllers import detect_controllers
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
from crid.cgroups.parent import check_cgroup_parent, check_parent_driver, remove_pod_cgroup
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
    "check_cgroup_parent",
    "check_parent_driver",
    "container_cgroup_path",
    "detect_controllers",
    "oom_kills",
    "read_details",
    "read_stats",
    "remove_pod_cgroup",
]
