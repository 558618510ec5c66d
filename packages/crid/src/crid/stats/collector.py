"""Sampling pods and containers: cgroup counters, CPU rates, memory limits, writable layers.

Its methods block (a pod is a few dozen small file reads), so the stats sampler
(:mod:`crid.stats.sampler`) calls them in a worker thread, never on the event loop.
Containers are read from their own cgroup (``Container.cgroup_path``), pods from the pod
cgroup (``Sandbox.cgroup_parent``), which holds all of the pod's containers.

A *detailed* sample (for pod metrics) also reads the counters of the metric ``groups``
(:mod:`crid.cgroups.details`), the processes' open files and the writable layer's file
system; stats alone never pay for those reads.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from pathlib import Path

from crid.cgroups import CgroupDetails, Hierarchies, read_details, read_stats
from crid.cgroups.stats import CgroupStats, memory_limit
from crid.state import Container, ContainerState, Sandbox
from crid.stats.filesystems import FsInfo, filesystem_of
from crid.stats.network import read_pod_network
from crid.stats.paths import cgroup_dir
from crid.stats.processes import ProcessDetails, cgroup_pids, read_processes
from crid.stats.rates import CpuRates
from crid.stats.usage import ContainerUsage, CpuUsage, FsUsage, MemoryUsage, SandboxUsage
from ocistore import AsyncStore
from ocistore.errors import StoreError

__all__ = ["StatsCollector", "memory_limit", "mountpoint_of"]


def mountpoint_of(path: Path) -> str:
    """The mount point of the file system holding ``path`` (the CRI's fs id)."""
    current = path.resolve()
    device = current.stat().st_dev
    while current != current.parent:
        parent = current.parent
        if parent.stat().st_dev != device:
            break
        current = parent
    return str(current)


class StatsCollector:
    """Samples usage for the stats RPCs; keeps CPU samples between calls for rates."""

    def __init__(
        self,
        *,
        hierarchies: Hierarchies,
        store: AsyncStore,
        layer_interval: float = 10.0,
        groups: Collection[str] = (),
    ) -> None:
        self.hierarchies = hierarchies
        self.store = store
        #: The metric groups detailed samples read (``[crid.stats] included_pod_metrics``).
        self.groups = frozenset(groups)
        self.rates = CpuRates()
        self.layer_interval_ns = int(layer_interval * 1_000_000_000)
        #: Each container's last writable-layer measure, with when it was taken (None:
        #: it could not be measured; asked again after the interval, not every round).
        self._layers: dict[str, tuple[int, FsUsage | None]] = {}
        self._mountpoint: str | None = None

    def _mount(self) -> str:
        if self._mountpoint is None:
            self._mountpoint = mountpoint_of(self.store.store.root)
        return self._mountpoint

    def _cgroup(self, cgroup: str) -> tuple[CgroupStats, CpuUsage, MemoryUsage]:
        raw = read_stats(self.hierarchies, cgroup)
        now = raw.timestamp_ns
        limit = memory_limit(self.hierarchies, cgroup)
        working_set = raw.memory_working_set_bytes
        available = (
            max(limit - working_set, 0) if limit is not None and working_set is not None else None
        )
        cpu = CpuUsage(
            timestamp_ns=now,
            usage_core_ns=raw.cpu_usage_ns,
            usage_nano_cores=self.rates.rate(cgroup, now, raw.cpu_usage_ns),
        )
        memory = MemoryUsage(
            timestamp_ns=now,
            working_set_bytes=working_set,
            available_bytes=available,
            usage_bytes=raw.memory_usage_bytes,
            rss_bytes=raw.memory_rss_bytes,
            page_faults=raw.page_faults,
            major_page_faults=raw.major_page_faults,
            limit_bytes=limit,
        )
        return raw, cpu, memory

    def _details(self, cgroup: str) -> tuple[CgroupDetails, ProcessDetails | None]:
        details = read_details(self.hierarchies, cgroup, self.groups)
        processes = None
        if "process" in self.groups:
            processes = read_processes(cgroup_pids(self.hierarchies, cgroup))
        return details, processes

    def _filesystem(self) -> FsInfo | None:
        if "disk" not in self.groups:
            return None
        try:
            return filesystem_of(self.store.store.root)
        except OSError:
            return None

    def _writable_layer(self, container_id: str) -> FsUsage | None:
        """The upper directory's usage: a tree walk, so redone at most every layer interval."""
        now = time.time_ns()
        known = self._layers.get(container_id)
        if known is not None and now - known[0] < self.layer_interval_ns:
            return known[1]
        layer: FsUsage | None
        try:
            used = self.store.store.container_usage(container_id)
        except (StoreError, OSError):
            layer = None
        else:
            layer = FsUsage(
                timestamp_ns=now,
                mountpoint=self._mount(),
                used_bytes=used.bytes,
                inodes_used=used.inodes,
            )
        self._layers[container_id] = (now, layer)
        return layer

    def container(self, container: Container, *, detailed: bool = False) -> ContainerUsage:
        """Sample one container (blocking)."""
        cgroup = cgroup_dir(container.cgroup_path) if container.cgroup_path else ""
        details = process_details = filesystem = None
        if cgroup and container.state in (ContainerState.RUNNING, ContainerState.CREATED):
            raw, cpu, memory = self._cgroup(cgroup)
            processes = raw.process_count
            if detailed:
                details, process_details = self._details(cgroup)
        else:
            now = time.time_ns()
            cpu, memory, processes = CpuUsage(timestamp_ns=now), MemoryUsage(timestamp_ns=now), None
        if detailed:
            filesystem = self._filesystem()
        return ContainerUsage(
            container_id=container.id,
            cgroup=cgroup,
            cpu=cpu,
            memory=memory,
            process_count=processes,
            writable_layer=self._writable_layer(container.id),
            details=details,
            processes=process_details,
            filesystem=filesystem,
        )

    def sandbox(
        self, sandbox: Sandbox, containers: Sequence[Container], *, detailed: bool = False
    ) -> SandboxUsage:
        """Sample one pod with its given (running) containers (blocking)."""
        cgroup = cgroup_dir(sandbox.cgroup_parent) if sandbox.cgroup_parent else ""
        details = process_details = None
        if cgroup:
            raw, cpu, memory = self._cgroup(cgroup)
            processes = raw.process_count
            if detailed:
                details, process_details = self._details(cgroup)
        else:
            now = time.time_ns()
            cpu, memory, processes = CpuUsage(timestamp_ns=now), MemoryUsage(timestamp_ns=now), None
        return SandboxUsage(
            sandbox_id=sandbox.id,
            cgroup=cgroup,
            cpu=cpu,
            memory=memory,
            process_count=processes,
            network=(
                read_pod_network(sandbox.namespaces["network"], [c.pid for c in containers])
                if "network" in sandbox.namespaces
                else None
            ),
            containers=tuple(self.container(c, detailed=detailed) for c in containers),
            details=details,
            processes=process_details,
            detailed=detailed,
        )

    def forget_except(self, cgroups: set[str], container_ids: set[str]) -> None:
        """Drop CPU samples and writable layers of records that no longer exist."""
        self.rates.forget_except(cgroups)
        # list(dict) is one atomic copy: a worker thread may be adding layers meanwhile.
        for cid in [c for c in list(self._layers) if c not in container_ids]:
            self._layers.pop(cid, None)
