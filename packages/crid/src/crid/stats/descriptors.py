"""The metric names of ``ListMetricDescriptors``: cAdvisor's, so the kubelet's
``/metrics/cadvisor`` (with ``PodAndContainerStatsFromCRI``) keeps its familiar series.

Every metric carries cAdvisor's identifying labels (``container``, ``id`` (the cgroup),
``image``, ``name`` (the container or pod id), ``namespace``, ``pod``), then its own
(cAdvisor's too: ``cpu``, ``device``, ``interface``, ...). Each belongs to one of CRI-O's
metric groups (``[crid.stats] included_pod_metrics``); ``container_last_seen`` and
``container_start_time_seconds`` belong to none and are always reported.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ALWAYS",
    "BASE_LABELS",
    "CONTROLLER_GROUPS",
    "METRIC_DESCRIPTORS",
    "MetricDescriptor",
    "MetricKind",
    "MetricSample",
    "descriptors_for",
    "host_groups",
]

BASE_LABELS = ("container", "id", "image", "name", "namespace", "pod")

#: The group of the metrics reported whatever the configuration says.
ALWAYS = ""


class MetricKind(Enum):
    """The CRI's MetricType."""

    COUNTER = 0
    GAUGE = 1


@dataclass(frozen=True, kw_only=True)
class MetricDescriptor:
    """One metric name, its help text, its group and its label keys (base labels first)."""

    name: str
    help: str
    kind: MetricKind
    group: str
    extra_labels: tuple[str, ...] = ()

    @property
    def label_keys(self) -> tuple[str, ...]:
        return BASE_LABELS + self.extra_labels


@dataclass(frozen=True, kw_only=True)
class MetricSample:
    """One value of one metric, with the label values in ``label_keys`` order."""

    name: str
    kind: MetricKind
    timestamp_ns: int
    label_values: tuple[str, ...]
    value: int


_C = MetricKind.COUNTER
_G = MetricKind.GAUGE
_NET = ("interface",)
_DEV = ("device",)

# (name, kind, group, extra labels, help)
_TABLE: tuple[tuple[str, MetricKind, str, tuple[str, ...], str], ...] = (
    ("container_last_seen", _G, ALWAYS, (), "Last time a container was seen by the exporter"),
    (
        "container_start_time_seconds",
        _G,
        ALWAYS,
        (),
        "Start time of the container since unix epoch in seconds.",
    ),
    (
        "container_cpu_usage_seconds_total",
        _C,
        "cpu",
        ("cpu",),
        "Cumulative cpu time consumed in seconds.",
    ),
    (
        "container_cpu_user_seconds_total",
        _C,
        "cpu",
        (),
        "Cumulative user cpu time consumed in seconds.",
    ),
    (
        "container_cpu_system_seconds_total",
        _C,
        "cpu",
        (),
        "Cumulative system cpu time consumed in seconds.",
    ),
    (
        "container_cpu_cfs_periods_total",
        _C,
        "cpu",
        (),
        "Number of elapsed enforcement period intervals.",
    ),
    (
        "container_cpu_cfs_throttled_periods_total",
        _C,
        "cpu",
        (),
        "Number of throttled period intervals.",
    ),
    (
        "container_cpu_cfs_throttled_seconds_total",
        _C,
        "cpu",
        (),
        "Total time duration the container has been throttled.",
    ),
    ("container_memory_cache", _G, "memory", (), "Number of bytes of page cache memory."),
    ("container_memory_rss", _G, "memory", (), "Size of RSS in bytes."),
    (
        "container_memory_kernel_usage",
        _G,
        "memory",
        (),
        "Size of kernel memory allocated in bytes.",
    ),
    ("container_memory_mapped_file", _G, "memory", (), "Size of memory mapped files in bytes."),
    ("container_memory_swap", _G, "memory", (), "Container swap usage in bytes."),
    ("container_memory_failcnt", _C, "memory", (), "Number of memory usage hits limits"),
    (
        "container_memory_usage_bytes",
        _G,
        "memory",
        (),
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    (
        "container_memory_max_usage_bytes",
        _G,
        "memory",
        (),
        "Maximum memory usage recorded in bytes",
    ),
    ("container_memory_working_set_bytes", _G, "memory", (), "Current working set in bytes."),
    (
        "container_memory_failures_total",
        _C,
        "memory",
        ("failure_type", "scope"),
        "Cumulative count of memory allocation failures.",
    ),
    (
        "container_oom_events_total",
        _C,
        "oom",
        (),
        "Count of out of memory events observed for the container",
    ),
    (
        "container_network_receive_bytes_total",
        _C,
        "network",
        _NET,
        "Cumulative count of bytes received",
    ),
    (
        "container_network_receive_packets_total",
        _C,
        "network",
        _NET,
        "Cumulative count of packets received",
    ),
    (
        "container_network_receive_packets_dropped_total",
        _C,
        "network",
        _NET,
        "Cumulative count of packets dropped while receiving",
    ),
    (
        "container_network_receive_errors_total",
        _C,
        "network",
        _NET,
        "Cumulative count of errors encountered while receiving",
    ),
    (
        "container_network_transmit_bytes_total",
        _C,
        "network",
        _NET,
        "Cumulative count of bytes transmitted",
    ),
    (
        "container_network_transmit_packets_total",
        _C,
        "network",
        _NET,
        "Cumulative count of packets transmitted",
    ),
    (
        "container_network_transmit_packets_dropped_total",
        _C,
        "network",
        _NET,
        "Cumulative count of packets dropped while transmitting",
    ),
    (
        "container_network_transmit_errors_total",
        _C,
        "network",
        _NET,
        "Cumulative count of errors encountered while transmitting",
    ),
    ("container_fs_inodes_free", _G, "disk", _DEV, "Number of available Inodes"),
    ("container_fs_inodes_total", _G, "disk", _DEV, "Number of Inodes"),
    (
        "container_fs_limit_bytes",
        _G,
        "disk",
        _DEV,
        "Number of bytes that can be consumed by the container on this filesystem.",
    ),
    (
        "container_fs_usage_bytes",
        _G,
        "disk",
        _DEV,
        "Number of bytes that are consumed by the container on this filesystem.",
    ),
    (
        "container_blkio_device_usage_total",
        _C,
        "diskIO",
        ("device", "major", "minor", "operation"),
        "Blkio Device bytes usage",
    ),
    ("container_fs_reads_bytes_total", _C, "diskIO", _DEV, "Cumulative count of bytes read"),
    ("container_fs_reads_total", _C, "diskIO", _DEV, "Cumulative count of reads completed"),
    ("container_fs_writes_bytes_total", _C, "diskIO", _DEV, "Cumulative count of bytes written"),
    ("container_fs_writes_total", _C, "diskIO", _DEV, "Cumulative count of writes completed"),
    (
        "container_hugetlb_usage_bytes",
        _G,
        "hugetlb",
        ("pagesize",),
        "Current hugepage usage in bytes",
    ),
    (
        "container_hugetlb_max_usage_bytes",
        _G,
        "hugetlb",
        ("pagesize",),
        "Maximum hugepage usage recorded in bytes",
    ),
    ("container_processes", _G, "process", (), "Number of processes running inside the container."),
    ("container_threads", _G, "process", (), "Number of threads running inside the container"),
    (
        "container_threads_max",
        _G,
        "process",
        (),
        "Maximum number of threads allowed inside the container, infinity if value is zero",
    ),
    (
        "container_file_descriptors",
        _G,
        "process",
        (),
        "Number of open file descriptors for the container.",
    ),
    ("container_sockets", _G, "process", (), "Number of open sockets for the container."),
    (
        "container_ulimits_soft",
        _G,
        "process",
        ("ulimit",),
        "Soft ulimit values for the container root process."
        " Unlimited if -1, except priority and nice",
    ),
    (
        "container_pressure_cpu_stalled_seconds_total",
        _C,
        "pressure",
        (),
        "Total time duration no tasks in the container could make progress due to CPU congestion.",
    ),
    (
        "container_pressure_cpu_waiting_seconds_total",
        _C,
        "pressure",
        (),
        "Total time duration tasks in the container have waited due to CPU congestion.",
    ),
    (
        "container_pressure_memory_stalled_seconds_total",
        _C,
        "pressure",
        (),
        "Total time duration no tasks in the container could make progress"
        " due to memory congestion.",
    ),
    (
        "container_pressure_memory_waiting_seconds_total",
        _C,
        "pressure",
        (),
        "Total time duration tasks in the container have waited due to memory congestion.",
    ),
    (
        "container_pressure_io_stalled_seconds_total",
        _C,
        "pressure",
        (),
        "Total time duration no tasks in the container could make progress due to IO congestion.",
    ),
    (
        "container_pressure_io_waiting_seconds_total",
        _C,
        "pressure",
        (),
        "Total time duration tasks in the container have waited due to IO congestion.",
    ),
    ("container_spec_cpu_period", _G, "spec", (), "CPU period of the container."),
    ("container_spec_cpu_quota", _G, "spec", (), "CPU quota of the container."),
    ("container_spec_cpu_shares", _G, "spec", (), "CPU share of the container."),
    ("container_spec_memory_limit_bytes", _G, "spec", (), "Memory limit for the container."),
    (
        "container_spec_memory_reservation_limit_bytes",
        _G,
        "spec",
        (),
        "Memory reservation limit for the container.",
    ),
    (
        "container_spec_memory_swap_limit_bytes",
        _G,
        "spec",
        (),
        "Memory swap limit for the container.",
    ),
)

METRIC_DESCRIPTORS: tuple[MetricDescriptor, ...] = tuple(
    MetricDescriptor(name=name, help=text, kind=kind, group=group, extra_labels=extra)
    for name, kind, group, extra, text in _TABLE
)

#: Each descriptor by name.
BY_NAME = {d.name: d for d in METRIC_DESCRIPTORS}


def descriptors_for(groups: Collection[str]) -> tuple[MetricDescriptor, ...]:
    """The descriptors of ``groups`` plus the ones always reported, in table order."""
    return tuple(d for d in METRIC_DESCRIPTORS if d.group == ALWAYS or d.group in groups)


#: Groups whose every value comes from one cgroup controller: without it (hugetlb where
#: no hierarchy mounts it) the group can have no value on this host.
CONTROLLER_GROUPS = {"hugetlb": "hugetlb"}


def host_groups(groups: Collection[str], controllers: Collection[str]) -> frozenset[str]:
    """``groups`` less those whose controller is not among ``controllers`` (the host's):
    they are neither read, described nor reported."""
    return frozenset(
        g for g in groups if CONTROLLER_GROUPS.get(g) is None or CONTROLLER_GROUPS[g] in controllers
    )
