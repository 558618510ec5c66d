"""What crid reports about a container's or a pod's resource usage, free of CRI types.

``None`` means "not known" (a controller not mounted, a cgroup already gone, the first
sample of a rate): the CRI leaves such a field unset rather than reporting a false 0.
A *detailed* sample also holds what only the pod metrics report (``details``,
``processes``, ``filesystem``); plain stats samples skip those reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crid.cgroups.details import CgroupDetails
from crid.stats.filesystems import FsInfo
from crid.stats.network import NetworkUsage
from crid.stats.processes import ProcessDetails

__all__ = ["ContainerUsage", "CpuUsage", "FsUsage", "MemoryUsage", "SandboxUsage"]


@dataclass(frozen=True, kw_only=True)
class CpuUsage:
    """Cumulative CPU time and the rate since the previous sample of the same cgroup."""

    timestamp_ns: int
    usage_core_ns: int | None = None
    usage_nano_cores: int | None = None


@dataclass(frozen=True, kw_only=True)
class MemoryUsage:
    """Memory as the kubelet evicts on it: working set = usage - inactive file pages."""

    timestamp_ns: int
    working_set_bytes: int | None = None
    available_bytes: int | None = None
    usage_bytes: int | None = None
    rss_bytes: int | None = None
    page_faults: int | None = None
    major_page_faults: int | None = None
    limit_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class FsUsage:
    """The writable layer: allocated bytes and inodes, on the file system at ``mountpoint``."""

    timestamp_ns: int
    mountpoint: str
    used_bytes: int
    inodes_used: int


@dataclass(frozen=True, kw_only=True)
class ContainerUsage:
    """One container's sample."""

    container_id: str
    cgroup: str
    cpu: CpuUsage
    memory: MemoryUsage
    process_count: int | None = None
    writable_layer: FsUsage | None = None
    details: CgroupDetails | None = None
    processes: ProcessDetails | None = None
    filesystem: FsInfo | None = None


@dataclass(frozen=True, kw_only=True)
class SandboxUsage:
    """One pod's sample: its cgroup as a whole, plus each of its containers."""

    sandbox_id: str
    cgroup: str
    cpu: CpuUsage
    memory: MemoryUsage
    process_count: int | None = None
    network: NetworkUsage | None = None
    containers: tuple[ContainerUsage, ...] = field(default_factory=tuple)
    details: CgroupDetails | None = None
    processes: ProcessDetails | None = None
    detailed: bool = False
