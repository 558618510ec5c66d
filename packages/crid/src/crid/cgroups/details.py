"""The cgroup counters behind cAdvisor's metric names, read from cgroup v1 or v2 files.

:mod:`crid.cgroups.stats` reads what the CRI stats messages carry; this module reads the
rest of what ``ListPodSandboxMetrics`` reports (user/system CPU, CFS throttling, page
cache, swap, block IO per device, hugepages, thread counts, the limits in force), one
group at a time so that excluded groups cost no reads. Limits read as "no limit" (v1's
page-aligned 2^63, v2's ``max``) are reported as 0, as cAdvisor does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from dataclasses import dataclass

from crid.cgroups._files import read_int, read_keyed, read_text
from crid.cgroups.hierarchy import Hierarchies

__all__ = [
    "BlkioEntry",
    "CgroupDetails",
    "CpuDetails",
    "HugetlbUsage",
    "MemoryDetails",
    "PressureDetails",
    "SpecDetails",
    "parse_blkio",
    "parse_io_stat",
    "parse_pressure",
    "read_details",
]

# cgroup v1 writes "no limit" as the largest page-aligned 63-bit value.
_UNLIMITED = 1 << 62


@dataclass(frozen=True, kw_only=True)
class CpuDetails:
    """User and system time, and CFS throttling (nanoseconds and period counts); ``quota``
    the CFS quota in microseconds per period, None without one (cAdvisor reports the
    throttling counters only then)."""

    user_ns: int | None = None
    system_ns: int | None = None
    periods: int | None = None
    throttled_periods: int | None = None
    throttled_ns: int | None = None
    quota: int | None = None


@dataclass(frozen=True, kw_only=True)
class MemoryDetails:
    """Page cache, kernel, mapped files, swap, limit hits, peak, faults by scope, OOM kills."""

    cache: int | None = None
    kernel: int | None = None
    mapped_file: int | None = None
    swap: int | None = None
    failcnt: int | None = None
    max_usage: int | None = None
    pgfault: int | None = None
    pgmajfault: int | None = None
    hierarchy_pgfault: int | None = None
    hierarchy_pgmajfault: int | None = None
    oom_kills: int | None = None


@dataclass(frozen=True, kw_only=True)
class SpecDetails:
    """The limits in force (0: none), as cAdvisor's ``container_spec_*`` report them."""

    cpu_period: int | None = None
    cpu_quota: int | None = None  # None: no quota
    cpu_shares: int | None = None
    memory_limit: int | None = None
    memory_reservation: int | None = None
    memory_swap_limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class PressureDetails:
    """PSI totals in microseconds: ``some`` (some task waited), ``full`` (all stalled)."""

    cpu_some_us: int | None = None
    cpu_full_us: int | None = None
    memory_some_us: int | None = None
    memory_full_us: int | None = None
    io_some_us: int | None = None
    io_full_us: int | None = None


@dataclass(frozen=True, kw_only=True)
class HugetlbUsage:
    """One hugepage size (``2MB``, ``1GB``): usage and peak (v1 only) in bytes."""

    pagesize: str
    usage: int
    max_usage: int | None = None


@dataclass(frozen=True, kw_only=True)
class BlkioEntry:
    """One block device counter: bytes or operations of one kind (``Read``, ``Write``...)."""

    major: int
    minor: int
    operation: str
    value: int


@dataclass(frozen=True, kw_only=True)
class CgroupDetails:
    """The groups that were asked for; a group not read is None (or empty)."""

    cpu: CpuDetails | None = None
    memory: MemoryDetails | None = None
    spec: SpecDetails | None = None
    hugetlb: tuple[HugetlbUsage, ...] = ()
    io_bytes: tuple[BlkioEntry, ...] = ()
    io_operations: tuple[BlkioEntry, ...] = ()
    threads: int | None = None
    threads_max: int | None = None
    pressure: PressureDetails | None = None


def _limit(value: int | None) -> int | None:
    if value is None:
        return None
    return 0 if value >= _UNLIMITED or value < 0 else value


def _limit_v2(path: str | None) -> int | None:
    raw = read_text(path)
    if raw is None:
        return None
    text = raw.strip()
    if text == "max":
        return 0
    try:
        return int(text)
    except ValueError:
        return None


def parse_blkio(text: str | None) -> list[BlkioEntry]:
    """v1 ``blkio.*_recursive`` lines (``8:0 Read 4096``); the cgroup-wide Total is left out."""
    found = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) != 3 or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        try:
            found.append(
                BlkioEntry(
                    major=int(major), minor=int(minor), operation=fields[1], value=int(fields[2])
                )
            )
        except ValueError:
            continue
    return found


_IO_STAT_KEYS = {
    "rbytes": (0, "Read"),
    "wbytes": (0, "Write"),
    "dbytes": (0, "Discard"),
    "rios": (1, "Read"),
    "wios": (1, "Write"),
    "dios": (1, "Discard"),
}


def parse_io_stat(text: str | None) -> tuple[list[BlkioEntry], list[BlkioEntry]]:
    """v2 ``io.stat`` (``8:0 rbytes=1 wbytes=2 rios=3 ...``): (bytes, operations)."""
    found: tuple[list[BlkioEntry], list[BlkioEntry]] = ([], [])
    for line in (text or "").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        try:
            ids = (int(major), int(minor))
        except ValueError:
            continue
        for pair in pairs:
            key, _, value = pair.partition("=")
            known = _IO_STAT_KEYS.get(key)
            if known is None:
                continue
            try:
                number = int(value)
            except ValueError:
                continue
            found[known[0]].append(
                BlkioEntry(major=ids[0], minor=ids[1], operation=known[1], value=number)
            )
    return found


def parse_pressure(text: str | None) -> dict[str, int]:
    """A ``*.pressure`` file: the ``total=`` (microseconds) of its ``some`` and ``full`` lines."""
    found: dict[str, int] = {}
    for line in (text or "").splitlines():
        kind, *pairs = line.split()
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key == "total" and value.isdigit():
                found[kind] = int(value)
    return found


def read_pressure(hierarchies: Hierarchies, cgroup: str) -> PressureDetails | None:
    """PSI of ``cgroup`` in the cgroup v2 tree; hybrid hosts keep one too (runc creates
    every cgroup there, and the kernel tracks pressure per v2 cgroup without controllers)."""
    if hierarchies.v2 is None:
        return None
    directory = f"{hierarchies.v2}/{cgroup.strip('/')}"
    cpu = parse_pressure(read_text(f"{directory}/cpu.pressure"))
    memory = parse_pressure(read_text(f"{directory}/memory.pressure"))
    io = parse_pressure(read_text(f"{directory}/io.pressure"))
    if not (cpu or memory or io):
        return None
    return PressureDetails(
        cpu_some_us=cpu.get("some"),
        cpu_full_us=cpu.get("full"),
        memory_some_us=memory.get("some"),
        memory_full_us=memory.get("full"),
        io_some_us=io.get("some"),
        io_full_us=io.get("full"),
    )


def _hugetlb(hierarchies: Hierarchies, cgroup: str, v2: bool) -> tuple[HugetlbUsage, ...]:
    directory = hierarchies.controller_path("hugetlb", cgroup)
    if directory is None:
        return ()
    usage_suffix = ".current" if v2 else ".usage_in_bytes"
    try:
        names = [entry.name for entry in directory.iterdir()]
    except OSError:
        return ()
    found = []
    for name in sorted(names):
        if not (name.startswith("hugetlb.") and name.endswith(usage_suffix)):
            continue
        pagesize = name[len("hugetlb.") : -len(usage_suffix)]
        if "." in pagesize:  # hugetlb.2MB.rsvd.current and the like
            continue
        usage = read_int(directory / name)
        if usage is None:
            continue
        peak = None if v2 else read_int(directory / f"hugetlb.{pagesize}.max_usage_in_bytes")
        found.append(HugetlbUsage(pagesize=pagesize, usage=usage, max_usage=peak))
    return tuple(found)


def _shares_of_weight(weight: int | None) -> int | None:
    """cgroup v2 ``cpu.weight`` back to v1 shares (the inverse of runc's conversion)."""
    if weight is None:
        return None
    return 2 + ((weight - 1) * 262142) // 9999


def _read_v1(hierarchies: Hierarchies, cgroup: str, groups: Collection[str]) -> CgroupDetails:
    # Plain strings: pathlib's joins cost more than the reads (~30 files per cgroup).
    directories: dict[str, str | None] = {}

    def f(controller: str, name: str) -> str | None:
        if controller not in directories:
            directories[controller] = hierarchies.controller_dir(controller, cgroup)
        directory = directories[controller]
        return f"{directory}/{name}" if directory is not None else None

    cpu = memory = spec = None
    io_bytes: list[BlkioEntry] = []
    io_ops: list[BlkioEntry] = []
    if "cpu" in groups:
        throttling = read_keyed(f("cpu", "cpu.stat"))
        user = read_int(f("cpuacct", "cpuacct.usage_user"))
        system = read_int(f("cpuacct", "cpuacct.usage_sys"))
        if user is None or system is None:  # older kernels: USER_HZ ticks
            ticks = read_keyed(f("cpuacct", "cpuacct.stat"))
            tick_ns = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            user = ticks["user"] * tick_ns if "user" in ticks else None
            system = ticks["system"] * tick_ns if "system" in ticks else None
        quota = read_int(f("cpu", "cpu.cfs_quota_us"))
        cpu = CpuDetails(
            user_ns=user,
            system_ns=system,
            periods=throttling.get("nr_periods"),
            throttled_periods=throttling.get("nr_throttled"),
            throttled_ns=throttling.get("throttled_time"),
            quota=quota if quota is not None and quota > 0 else None,
        )
    if "memory" in groups or "oom" in groups:
        stat = read_keyed(f("memory", "memory.stat"))
        usage = read_int(f("memory", "memory.usage_in_bytes"))
        with_swap = read_int(f("memory", "memory.memsw.usage_in_bytes"))
        swap = (
            max(with_swap - usage, 0)
            if with_swap is not None and usage is not None
            else stat.get("total_swap")
        )
        oom = read_keyed(f("memory", "memory.oom_control"))
        memory = MemoryDetails(
            cache=stat.get("total_cache"),
            kernel=read_int(f("memory", "memory.kmem.usage_in_bytes")),
            mapped_file=stat.get("total_mapped_file"),
            swap=swap,
            failcnt=read_int(f("memory", "memory.failcnt")),
            max_usage=read_int(f("memory", "memory.max_usage_in_bytes")),
            pgfault=stat.get("pgfault"),
            pgmajfault=stat.get("pgmajfault"),
            hierarchy_pgfault=stat.get("total_pgfault"),
            hierarchy_pgmajfault=stat.get("total_pgmajfault"),
            oom_kills=oom.get("oom_kill", 0) if oom else None,
        )
    if "spec" in groups:
        quota = read_int(f("cpu", "cpu.cfs_quota_us"))
        spec = SpecDetails(
            cpu_period=read_int(f("cpu", "cpu.cfs_period_us")),
            cpu_quota=quota if quota is not None and quota > 0 else None,
            cpu_shares=read_int(f("cpu", "cpu.shares")),
            memory_limit=_limit(read_int(f("memory", "memory.limit_in_bytes"))),
            memory_reservation=_limit(read_int(f("memory", "memory.soft_limit_in_bytes"))),
            memory_swap_limit=_limit(read_int(f("memory", "memory.memsw.limit_in_bytes"))),
        )
    if "diskIO" in groups:
        # CFQ/BFQ fill the plain files; other schedulers only the throttle ones.
        for prefix in ("blkio.", "blkio.throttle."):
            io_bytes = parse_blkio(read_text(f("blkio", f"{prefix}io_service_bytes_recursive")))
            io_ops = parse_blkio(read_text(f("blkio", f"{prefix}io_serviced_recursive")))
            if io_bytes or io_ops:
                break
    threads = threads_max = None
    if "process" in groups:
        threads = read_int(f("pids", "pids.current"))
        threads_max = _limit_v2(f("pids", "pids.max"))
    return CgroupDetails(
        cpu=cpu,
        memory=memory,
        spec=spec,
        hugetlb=_hugetlb(hierarchies, cgroup, False) if "hugetlb" in groups else (),
        io_bytes=tuple(io_bytes),
        io_operations=tuple(io_ops),
        threads=threads,
        threads_max=threads_max,
    )


def _read_v2(hierarchies: Hierarchies, cgroup: str, groups: Collection[str]) -> CgroupDetails:
    directory = hierarchies.controller_dir("memory", cgroup)
    if directory is None:
        return CgroupDetails()

    def f(name: str) -> str:
        return f"{directory}/{name}"

    cpu = memory = spec = None
    io_bytes: list[BlkioEntry] = []
    io_ops: list[BlkioEntry] = []
    if "cpu" in groups:
        stat = read_keyed(f("cpu.stat"))

        def ns(key: str) -> int | None:
            return stat[key] * 1000 if key in stat else None

        cpu_max = (read_text(f("cpu.max")) or "").split()
        cpu = CpuDetails(
            user_ns=ns("user_usec"),
            system_ns=ns("system_usec"),
            periods=stat.get("nr_periods"),
            throttled_periods=stat.get("nr_throttled"),
            throttled_ns=ns("throttled_usec"),
            quota=int(cpu_max[0]) if cpu_max and cpu_max[0].isdigit() else None,
        )
    if "memory" in groups or "oom" in groups:
        stat = read_keyed(f("memory.stat"))
        events = read_keyed(f("memory.events"))
        kernel = stat.get("kernel")
        if kernel is None and "kernel_stack" in stat:  # before Linux 5.18
            kernel = sum(stat.get(k, 0) for k in ("kernel_stack", "pagetables", "slab", "sock"))
        memory = MemoryDetails(
            cache=stat.get("file"),
            kernel=kernel,
            mapped_file=stat.get("file_mapped"),
            swap=read_int(f("memory.swap.current")),
            failcnt=events.get("max"),
            max_usage=read_int(f("memory.peak")),
            pgfault=stat.get("pgfault"),
            pgmajfault=stat.get("pgmajfault"),
            hierarchy_pgfault=stat.get("pgfault"),
            hierarchy_pgmajfault=stat.get("pgmajfault"),
            oom_kills=events.get("oom_kill", 0) if events else None,
        )
    if "spec" in groups:
        quota = period = None
        cpu_max = (read_text(f("cpu.max")) or "").split()
        if len(cpu_max) == 2:
            quota = int(cpu_max[0]) if cpu_max[0].isdigit() else None
            period = int(cpu_max[1]) if cpu_max[1].isdigit() else None
        limit = _limit_v2(f("memory.max"))
        swap = _limit_v2(f("memory.swap.max"))
        spec = SpecDetails(
            cpu_period=period,
            cpu_quota=quota,
            cpu_shares=_shares_of_weight(read_int(f("cpu.weight"))),
            memory_limit=limit,
            memory_reservation=_limit_v2(f("memory.low")),
            # memory + swap, as v1's memsw limit (and cAdvisor) report it; 0: unlimited
            memory_swap_limit=(swap + limit if swap and limit else 0)
            if swap is not None and limit is not None
            else None,
        )
    if "diskIO" in groups:
        io_bytes, io_ops = parse_io_stat(read_text(f("io.stat")))
    threads = threads_max = None
    if "process" in groups:
        threads = read_int(f("pids.current"))
        threads_max = _limit_v2(f("pids.max"))
    return CgroupDetails(
        cpu=cpu,
        memory=memory,
        spec=spec,
        hugetlb=_hugetlb(hierarchies, cgroup, True) if "hugetlb" in groups else (),
        io_bytes=tuple(io_bytes),
        io_operations=tuple(io_ops),
        threads=threads,
        threads_max=threads_max,
    )


def read_details(hierarchies: Hierarchies, cgroup: str, groups: Collection[str]) -> CgroupDetails:
    """The counters of ``groups`` (metric group names) for ``cgroup`` (blocking reads)."""
    if hierarchies.unified:
        found = _read_v2(hierarchies, cgroup, groups)
    else:
        found = _read_v1(hierarchies, cgroup, groups)
    if "pressure" in groups:
        found = dataclasses.replace(found, pressure=read_pressure(hierarchies, cgroup))
    return found
