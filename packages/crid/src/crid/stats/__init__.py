"""Resource usage of pods and containers for the CRI stats and metrics RPCs."""

from __future__ import annotations

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
