"""Cgroups for the cgroupfs driver: where they are, pod cgroups, and usage statistics.

The detailed counters of :mod:`crid.cgroups.details` (pod metrics only) load at their
first use, not with the daemon.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from crid.cgroups.controllers import detect_controllers
from crid.cgroups.hierarchy import Hierarchies, container_cgroup_path
from crid.cgroups.parent import check_cgroup_parent, check_parent_driver, remove_pod_cgroup
from crid.cgroups.stats import CgroupStats, oom_kills, read_stats

if TYPE_CHECKING:
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

_DETAILS = frozenset(
    {
        "BlkioEntry",
        "CgroupDetails",
        "CpuDetails",
        "HugetlbUsage",
        "MemoryDetails",
        "PressureDetails",
        "SpecDetails",
        "read_details",
    }
)


def __getattr__(name: str) -> object:
    if name not in _DETAILS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("crid.cgroups.details"), name)
    globals()[name] = value
    return value
