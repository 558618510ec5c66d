"""Resource usage of pods and containers for the CRI stats and metrics RPCs.

Names load from their submodules at first use (PEP 562): an idle daemon imports this
package for :func:`cgroup_dir` and the record filters, and must not pay for the
samplers, cgroup readers and metric tables until the first stats or metrics RPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crid.stats.collector import StatsCollector, memory_limit, mountpoint_of
    from crid.stats.descriptors import (
        METRIC_DESCRIPTORS,
        MetricDescriptor,
        MetricKind,
        MetricSample,
        descriptors_for,
        host_groups,
    )
    from crid.stats.filesystems import FsInfo, device_name, filesystem_of
    from crid.stats.network import InterfaceUsage, NetworkUsage, parse_net_dev, read_pod_network
    from crid.stats.paths import cgroup_dir, slice_dir
    from crid.stats.pod_metrics import container_metrics, sandbox_metrics
    from crid.stats.processes import ProcessDetails, cgroup_pids, max_open_files, read_processes
    from crid.stats.rates import CpuRates
    from crid.stats.sampler import Pod, SampleListener, StatsSampler
    from crid.stats.select import (
        labels_match,
        running_by_pod,
        select_containers,
        select_sandboxes,
    )
    from crid.stats.usage import ContainerUsage, CpuUsage, FsUsage, MemoryUsage, SandboxUsage

__all__ = [
    "METRIC_DESCRIPTORS",
    "ContainerUsage",
    "CpuRates",
    "CpuUsage",
    "FsInfo",
    "FsUsage",
    "InterfaceUsage",
    "MemoryUsage",
    "MetricDescriptor",
    "MetricKind",
    "MetricSample",
    "NetworkUsage",
    "Pod",
    "ProcessDetails",
    "SampleListener",
    "SandboxUsage",
    "StatsCollector",
    "StatsSampler",
    "cgroup_dir",
    "cgroup_pids",
    "container_metrics",
    "descriptors_for",
    "device_name",
    "filesystem_of",
    "host_groups",
    "labels_match",
    "max_open_files",
    "memory_limit",
    "mountpoint_of",
    "parse_net_dev",
    "read_pod_network",
    "read_processes",
    "running_by_pod",
    "sandbox_metrics",
    "select_containers",
    "select_sandboxes",
    "slice_dir",
]


#: Where each public name lives.
_HOMES = {
    "ContainerUsage": "usage",
    "CpuRates": "rates",
    "CpuUsage": "usage",
    "FsInfo": "filesystems",
    "FsUsage": "usage",
    "InterfaceUsage": "network",
    "METRIC_DESCRIPTORS": "descriptors",
    "MemoryUsage": "usage",
    "MetricDescriptor": "descriptors",
    "MetricKind": "descriptors",
    "MetricSample": "descriptors",
    "NetworkUsage": "network",
    "Pod": "sampler",
    "ProcessDetails": "processes",
    "SampleListener": "sampler",
    "SandboxUsage": "usage",
    "StatsCollector": "collector",
    "StatsSampler": "sampler",
    "cgroup_dir": "paths",
    "cgroup_pids": "processes",
    "container_metrics": "pod_metrics",
    "descriptors_for": "descriptors",
    "device_name": "filesystems",
    "filesystem_of": "filesystems",
    "host_groups": "descriptors",
    "labels_match": "select",
    "max_open_files": "processes",
    "memory_limit": "collector",
    "mountpoint_of": "collector",
    "parse_net_dev": "network",
    "read_pod_network": "network",
    "read_processes": "processes",
    "running_by_pod": "select",
    "sandbox_metrics": "pod_metrics",
    "select_containers": "select",
    "select_sandboxes": "select",
    "slice_dir": "paths",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
