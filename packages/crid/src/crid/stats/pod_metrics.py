"""Metric values of one detailed sample, as ``ListPodSandboxMetrics`` reports them.

A container's series come from its own cgroup, its processes and the file system of its
writable layer; the pod's (``container=""``, as cAdvisor's pod cgroup series) from the pod
cgroup, every process below it and the pod's network namespace (network metrics are
pod-level only, as in CRI-O: containers share the pod's interfaces). Values are the CRI's
unsigned integers: times are whole seconds. Unknown values are left out, never sent as 0.
"""

from __future__ import annotations

from collections.abc import Collection

from crid.cgroups.details import BlkioEntry, CgroupDetails
from crid.state import Container, Sandbox
from crid.stats.descriptors import ALWAYS, BY_NAME, MetricSample
from crid.stats.filesystems import device_name
from crid.stats.network import NetworkUsage
from crid.stats.processes import ProcessDetails
from crid.stats.usage import ContainerUsage, CpuUsage, MemoryUsage, SandboxUsage

__all__ = ["container_metrics", "sandbox_metrics"]

_NS = 1_000_000_000


class _Samples:
    """Collects the samples of one series owner (labels, time, allowed groups)."""

    def __init__(self, base: tuple[str, ...], timestamp_ns: int, groups: Collection[str]):
        self.base = base
        self.timestamp_ns = timestamp_ns
        self.groups = groups
        self.found: list[MetricSample] = []

    def wants(self, group: str) -> bool:
        return group == ALWAYS or group in self.groups

    def add(self, name: str, value: int | None, *extra: str) -> None:
        if value is None:
            return
        d = BY_NAME[name]
        if not self.wants(d.group):
            return
        self.found.append(
            MetricSample(
                name=name,
                kind=d.kind,
                timestamp_ns=self.timestamp_ns,
                label_values=self.base + extra,
                value=max(value, 0),
            )
        )


def _seconds(ns: int | None) -> int | None:
    return ns // _NS if ns is not None else None


def _cpu(out: _Samples, cpu: CpuUsage, details: CgroupDetails | None) -> None:
    out.add("container_cpu_usage_seconds_total", _seconds(cpu.usage_core_ns), "total")
    found = details.cpu if details is not None else None
    if found is None:
        return
    out.add("container_cpu_user_seconds_total", _seconds(found.user_ns))
    out.add("container_cpu_system_seconds_total", _seconds(found.system_ns))
    if found.quota is None:  # as cAdvisor: throttling only means something under a quota
        return
    out.add("container_cpu_cfs_periods_total", found.periods)
    out.add("container_cpu_cfs_throttled_periods_total", found.throttled_periods)
    out.add("container_cpu_cfs_throttled_seconds_total", _seconds(found.throttled_ns))


def _memory(out: _Samples, memory: MemoryUsage, details: CgroupDetails | None) -> None:
    out.add("container_memory_usage_bytes", memory.usage_bytes)
    out.add("container_memory_working_set_bytes", memory.working_set_bytes)
    out.add("container_memory_rss", memory.rss_bytes)
    found = details.memory if details is not None else None
    if found is None:
        return
    out.add("container_memory_cache", found.cache)
    out.add("container_memory_kernel_usage", found.kernel)
    out.add("container_memory_mapped_file", found.mapped_file)
    out.add("container_memory_swap", found.swap)
    out.add("container_memory_failcnt", found.failcnt)
    out.add("container_memory_max_usage_bytes", found.max_usage)
    failures = "container_memory_failures_total"
    out.add(failures, found.pgfault, "pgfault", "container")
    out.add(failures, found.pgmajfault, "pgmajfault", "container")
    out.add(failures, found.hierarchy_pgfault, "pgfault", "hierarchy")
    out.add(failures, found.hierarchy_pgmajfault, "pgmajfault", "hierarchy")
    out.add("container_oom_events_total", found.oom_kills)


def _per_device(entries: tuple[BlkioEntry, ...], operation: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for entry in entries:
        if entry.operation == operation:
            name = device_name(entry.major, entry.minor)
            totals[name] = totals.get(name, 0) + entry.value
    return totals


def _cgroup(out: _Samples, details: CgroupDetails | None) -> None:
    """Groups read from any cgroup besides cpu and memory: diskIO, hugetlb, pressure, spec."""
    if details is None:
        return
    for entry in details.io_bytes:
        out.add(
            "container_blkio_device_usage_total",
            entry.value,
            device_name(entry.major, entry.minor),
            str(entry.major),
            str(entry.minor),
            entry.operation,
        )
    for name, operation, entries in (
        ("container_fs_reads_bytes_total", "Read", details.io_bytes),
        ("container_fs_writes_bytes_total", "Write", details.io_bytes),
        ("container_fs_reads_total", "Read", details.io_operations),
        ("container_fs_writes_total", "Write", details.io_operations),
    ):
        for device, value in sorted(_per_device(entries, operation).items()):
            out.add(name, value, device)
    for page in details.hugetlb:
        out.add("container_hugetlb_usage_bytes", page.usage, page.pagesize)
        out.add("container_hugetlb_max_usage_bytes", page.max_usage, page.pagesize)
    psi = details.pressure
    if psi is not None:
        for name, total_us in (
            ("container_pressure_cpu_stalled_seconds_total", psi.cpu_full_us),
            ("container_pressure_cpu_waiting_seconds_total", psi.cpu_some_us),
            ("container_pressure_memory_stalled_seconds_total", psi.memory_full_us),
            ("container_pressure_memory_waiting_seconds_total", psi.memory_some_us),
            ("container_pressure_io_stalled_seconds_total", psi.io_full_us),
            ("container_pressure_io_waiting_seconds_total", psi.io_some_us),
        ):
            out.add(name, total_us // 1_000_000 if total_us is not None else None)
    spec = details.spec
    if spec is not None:
        out.add("container_spec_cpu_period", spec.cpu_period)
        out.add("container_spec_cpu_quota", spec.cpu_quota)
        out.add("container_spec_cpu_shares", spec.cpu_shares)
        out.add("container_spec_memory_limit_bytes", spec.memory_limit)
        out.add("container_spec_memory_reservation_limit_bytes", spec.memory_reservation)
        out.add("container_spec_memory_swap_limit_bytes", spec.memory_swap_limit)


def _processes(
    out: _Samples, details: CgroupDetails | None, processes: ProcessDetails | None
) -> None:
    if processes is None:
        return
    out.add("container_processes", processes.processes)
    threads = details.threads if details is not None else None
    out.add("container_threads", threads if threads is not None else processes.threads)
    out.add("container_threads_max", details.threads_max if details is not None else None)
    out.add("container_file_descriptors", processes.file_descriptors)
    out.add("container_sockets", processes.sockets)
    out.add("container_ulimits_soft", processes.max_open_files, "max_open_files")


def _network(out: _Samples, network: NetworkUsage | None) -> None:
    if network is None:
        return
    for i in network.interfaces:
        for name, value in (
            ("container_network_receive_bytes_total", i.rx_bytes),
            ("container_network_receive_packets_total", i.rx_packets),
            ("container_network_receive_packets_dropped_total", i.rx_dropped),
            ("container_network_receive_errors_total", i.rx_errors),
            ("container_network_transmit_bytes_total", i.tx_bytes),
            ("container_network_transmit_packets_total", i.tx_packets),
            ("container_network_transmit_packets_dropped_total", i.tx_dropped),
            ("container_network_transmit_errors_total", i.tx_errors),
        ):
            out.add(name, value, i.name)


def container_metrics(
    usage: ContainerUsage, container: Container, sandbox: Sandbox, groups: Collection[str]
) -> list[MetricSample]:
    """The series of one container sample, for the metric ``groups`` asked for."""
    base = (
        container.meta.name,
        usage.cgroup,
        container.image,
        container.id,
        sandbox.meta.namespace,
        sandbox.meta.name,
    )
    out = _Samples(base, usage.cpu.timestamp_ns, groups)
    out.add("container_last_seen", usage.cpu.timestamp_ns // _NS)
    started = container.started_at or container.created_at
    out.add("container_start_time_seconds", started // _NS if started else None)
    _cpu(out, usage.cpu, usage.details)
    _memory(out, usage.memory, usage.details)
    _cgroup(out, usage.details)
    _processes(out, usage.details, usage.processes)
    fs = usage.filesystem
    if fs is not None:
        out.add("container_fs_inodes_free", fs.inodes_free, fs.device)
        out.add("container_fs_inodes_total", fs.inodes_total, fs.device)
        out.add("container_fs_limit_bytes", fs.capacity_bytes, fs.device)
        layer = usage.writable_layer
        if layer is not None:
            out.add("container_fs_usage_bytes", layer.used_bytes, fs.device)
    return out.found


def sandbox_metrics(
    usage: SandboxUsage, sandbox: Sandbox, groups: Collection[str]
) -> list[MetricSample]:
    """The pod-level series of one pod sample (its containers' come separately).

    ``name`` is empty, as cAdvisor's for a pod cgroup (it has no alias): ``id`` (the pod
    cgroup), ``pod`` and ``namespace`` already tell the pod, and the sandbox id would add
    64 bytes to each of its series. A pod without a cgroup keeps its id there, so that
    its series stay distinct from another attempt's of the same name."""
    name = "" if usage.cgroup else sandbox.id
    base = ("", usage.cgroup, "", name, sandbox.meta.namespace, sandbox.meta.name)
    out = _Samples(base, usage.cpu.timestamp_ns, groups)
    out.add("container_last_seen", usage.cpu.timestamp_ns // _NS)
    out.add("container_start_time_seconds", sandbox.created_at // _NS or None)
    _cpu(out, usage.cpu, usage.details)
    _memory(out, usage.memory, usage.details)
    _cgroup(out, usage.details)
    _processes(out, usage.details, usage.processes)
    _network(out, usage.network)
    return out.found
