"""The pod and container metrics of ``ListPodSandboxMetrics``: a documented subset of
cAdvisor's names, so the kubelet's ``/metrics/cadvisor`` keeps its familiar series.

Every metric carries cAdvisor's identifying labels (``container``, ``id`` (the cgroup),
``image``, ``name`` (the container or pod id), ``namespace``, ``pod``), then its own.
Values are unsigned integers (the CRI's ``UInt64Value``): CPU time is whole seconds.
The pod-level series has ``container=""`` as cAdvisor's pod cgroup series does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from crid.state import Container, Sandbox
from crid.stats.usage import ContainerUsage, CpuUsage, MemoryUsage, SandboxUsage

__all__ = [
    "BASE_LABELS",
    "METRIC_DESCRIPTORS",
    "MetricDescriptor",
    "MetricKind",
    "MetricSample",
    "container_metrics",
    "sandbox_metrics",
]

BASE_LABELS = ("container", "id", "image", "name", "namespace", "pod")


class MetricKind(Enum):
    """The CRI's MetricType."""

    COUNTER = 0
    GAUGE = 1


@dataclass(frozen=True, kw_only=True)
class MetricDescriptor:
    """One metric name, its help text and its label keys (base labels first)."""

    name: str
    help: str
    kind: MetricKind
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


_CPU = MetricDescriptor(
    name="container_cpu_usage_seconds_total",
    help="Cumulative CPU time consumed, in whole seconds.",
    kind=MetricKind.COUNTER,
    extra_labels=("cpu",),
)
_MEM_USAGE = MetricDescriptor(
    name="container_memory_usage_bytes",
    help="Current memory usage in bytes, including all memory regardless of when it was accessed.",
    kind=MetricKind.GAUGE,
)
_WORKING_SET = MetricDescriptor(
    name="container_memory_working_set_bytes",
    help="Current working set in bytes (usage minus inactive file pages).",
    kind=MetricKind.GAUGE,
)
_RSS = MetricDescriptor(
    name="container_memory_rss", help="Size of RSS in bytes.", kind=MetricKind.GAUGE
)
_FAILURES = MetricDescriptor(
    name="container_memory_failures_total",
    help="Cumulative count of memory allocation failures (page faults).",
    kind=MetricKind.COUNTER,
    extra_labels=("failure_type", "scope"),
)
_LIMIT = MetricDescriptor(
    name="container_spec_memory_limit_bytes",
    help="Memory limit in bytes (0 when unlimited).",
    kind=MetricKind.GAUGE,
)
_PROCESSES = MetricDescriptor(
    name="container_processes", help="Number of processes running.", kind=MetricKind.GAUGE
)
_FS_USAGE = MetricDescriptor(
    name="container_fs_usage_bytes",
    help="Bytes consumed by the container's writable layer.",
    kind=MetricKind.GAUGE,
    extra_labels=("device",),
)

METRIC_DESCRIPTORS: tuple[MetricDescriptor, ...] = (
    _CPU,
    _MEM_USAGE,
    _WORKING_SET,
    _RSS,
    _FAILURES,
    _LIMIT,
    _PROCESSES,
    _FS_USAGE,
)


def _common(
    cpu: CpuUsage,
    memory: MemoryUsage,
    processes: int | None,
    base: tuple[str, ...],
) -> Iterator[MetricSample]:
    def sample(d: MetricDescriptor, ts: int, value: int, *extra: str) -> MetricSample:
        return MetricSample(
            name=d.name, kind=d.kind, timestamp_ns=ts, label_values=base + extra, value=value
        )

    if cpu.usage_core_ns is not None:
        yield sample(_CPU, cpu.timestamp_ns, cpu.usage_core_ns // 1_000_000_000, "total")
    ts = memory.timestamp_ns
    if memory.usage_bytes is not None:
        yield sample(_MEM_USAGE, ts, memory.usage_bytes)
    if memory.working_set_bytes is not None:
        yield sample(_WORKING_SET, ts, memory.working_set_bytes)
    if memory.rss_bytes is not None:
        yield sample(_RSS, ts, memory.rss_bytes)
    if memory.page_faults is not None:
        yield sample(_FAILURES, ts, memory.page_faults, "pgfault", "container")
    if memory.major_page_faults is not None:
        yield sample(_FAILURES, ts, memory.major_page_faults, "pgmajfault", "container")
    if memory.usage_bytes is not None:
        yield sample(_LIMIT, ts, memory.limit_bytes or 0)
    if processes is not None:
        yield sample(_PROCESSES, ts, processes)


def container_metrics(
    usage: ContainerUsage, container: Container, sandbox: Sandbox
) -> list[MetricSample]:
    """The metrics of one container sample."""
    base = (
        container.meta.name,
        usage.cgroup,
        container.image,
        container.id,
        sandbox.meta.namespace,
        sandbox.meta.name,
    )
    found = list(_common(usage.cpu, usage.memory, usage.process_count, base))
    layer = usage.writable_layer
    if layer is not None:
        found.append(
            MetricSample(
                name=_FS_USAGE.name,
                kind=_FS_USAGE.kind,
                timestamp_ns=layer.timestamp_ns,
                label_values=(*base, layer.mountpoint),
                value=layer.used_bytes,
            )
        )
    return found


def sandbox_metrics(usage: SandboxUsage, sandbox: Sandbox) -> list[MetricSample]:
    """The pod-level metrics of one pod sample (its containers' come separately)."""
    base = ("", usage.cgroup, "", sandbox.id, sandbox.meta.namespace, sandbox.meta.name)
    return list(_common(usage.cpu, usage.memory, usage.process_count, base))
