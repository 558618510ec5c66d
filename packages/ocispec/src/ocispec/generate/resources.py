"""Cgroup resources: building ``linux.resources``, cgroup v1 <-> v2 conversions, OOM score clamping.

Callers describe limits once (:class:`ResourceOptions`), in cgroup v1 terms (CPU shares,
memory + swap) or v2 terms (``cpu_weight``, ``unified`` keys such as ``memory.max``).
For a v1 host every v2 input is converted to the v1 fields (runc rejects ``unified`` on
v1); for a v2 host the v1 fields stay (runc converts them with the same formulas) and
``unified`` passes through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocispec._model import FrozenDict
from ocispec.errors import InvalidArgumentError
from ocispec.runtime import CPU, BlockIO, DeviceCgroup, HugepageLimit, Memory, Pids, Resources

__all__ = [
    "ResourceOptions",
    "blkio_weight_to_io_weight",
    "build_resources",
    "cpu_shares_to_weight",
    "cpu_weight_to_shares",
    "current_oom_score_adj",
    "detect_cgroup_version",
    "io_weight_to_blkio_weight",
    "memory_swap_to_v2",
    "restrict_oom_score_adj",
]

_MIN_SHARES, _MAX_SHARES = 2, 262144
_MIN_WEIGHT, _MAX_WEIGHT = 1, 10000


def cpu_shares_to_weight(shares: int) -> int:
    """cgroup v1 ``cpu.shares`` [2, 262144] to v2 ``cpu.weight`` [1, 10000] (runc's formula).

    0 means unset and stays 0.
    """
    if shares == 0:
        return 0
    shares = min(max(shares, _MIN_SHARES), _MAX_SHARES)
    return 1 + ((shares - 2) * 9999) // 262142


def cpu_weight_to_shares(weight: int) -> int:
    """cgroup v2 ``cpu.weight`` [1, 10000] to v1 ``cpu.shares``, the inverse of
    :func:`cpu_shares_to_weight` (``cpu_shares_to_weight(cpu_weight_to_shares(w)) == w``)."""
    if weight == 0:
        return 0
    if not _MIN_WEIGHT <= weight <= _MAX_WEIGHT:
        raise InvalidArgumentError(f"cpu weight {weight} is outside [1, 10000]")
    # The smallest shares value that maps to this weight.
    return 2 + -(-((weight - 1) * 262142) // 9999)


def blkio_weight_to_io_weight(weight: int) -> int:
    """cgroup v1 ``blkio.weight`` [10, 1000] to v2 ``io.weight`` [1, 10000] (runc's formula)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def io_weight_to_blkio_weight(weight: int) -> int:
    """cgroup v2 ``io.weight`` [1, 10000] to v1 ``blkio.weight`` [10, 1000]."""
    if weight == 0:
        return 0
    return 10 + -(-((weight - 1) * 990) // 9999)


def memory_swap_to_v2(memory_swap: int, memory: int) -> int:
    """v1 ``memory+swap`` limit to v2 ``memory.swap.max`` (swap only), as runc converts.

    -1 means unlimited; 0 means unset.
    """
    if memory == -1 and memory_swap == 0:
        return -1
    if memory_swap in (-1, 0):
        return memory_swap
    if memory in (0, -1):
        raise InvalidArgumentError("unable to set a swap limit without a memory limit")
    if memory < 0:
        raise InvalidArgumentError(f"invalid memory limit {memory}")
    if memory_swap < memory:
        raise InvalidArgumentError("the memory+swap limit must be at least the memory limit")
    return memory_swap - memory


def current_oom_score_adj(pid: int | str = "self") -> int:
    """The oom_score_adj of a process (this one by default)."""
    return int(Path(f"/proc/{pid}/oom_score_adj").read_text().strip())


def restrict_oom_score_adj(requested: int, current: int) -> int:
    """Clamp a requested OOM score adjustment to what a process at ``current`` may set.

    Without CAP_SYS_RESOURCE no process may lower its score below its current value, so
    runc would fail on a lower request; as containerd's ``restrict_oom_score_adj``, the
    request is raised to ``current``. Values are also kept in [-1000, 1000].
    """
    return min(max(requested, current, -1000), 1000)


def detect_cgroup_version(root: str = "/sys/fs/cgroup") -> int:
    """2 when ``root`` is a cgroup2 mount (unified), else 1 (legacy or hybrid)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) > 4 and fields[4] == root:
            return 2 if right.split()[0] == "cgroup2" else 1
    return 1


@dataclass(frozen=True, kw_only=True)
class ResourceOptions:
    """Resource limits of a container (CRI's ``LinuxContainerResources`` and more).

    Memory sizes are bytes, CPU times microseconds; -1 means unlimited where the cgroup
    interface allows it. ``memory_swap`` is memory plus swap (the v1 meaning).
    """

    cpu_shares: int | None = None
    cpu_weight: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    memory_limit: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    memory_swappiness: int | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None
    #: Page size (``2MB``, ``1GB``) to limit in bytes.
    hugepage_limits: Mapping[str, int] = field(default_factory=dict)
    #: Raw cgroup v2 files (``memory.high``: ``"1G"``...).
    unified: Mapping[str, str] = field(default_factory=dict)
    #: Device cgroup rules (the generator puts its allow-list here).
    devices: Sequence[DeviceCgroup] = ()


_HUGETLB = re.compile(r"^hugetlb\.([0-9]+[KMG]B)\.max$")


def _v2_int(key: str, value: str) -> int:
    text = value.strip()
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        raise InvalidArgumentError(f"unified {key}: {value!r} is not an integer or 'max'") from None


def _from_unified_v1(opts: ResourceOptions) -> dict[str, object]:
    """The v1 fields the ``unified`` keys stand for (v1 hosts)."""
    out: dict[str, object] = {}
    hugepages: dict[str, int] = {}
    for key, value in opts.unified.items():
        if key == "cpu.weight":
            out["cpu_shares"] = cpu_weight_to_shares(_v2_int(key, value))
        elif key == "cpu.max":
            parts = value.split()
            if not parts or len(parts) > 2:
                raise InvalidArgumentError(f"unified cpu.max: invalid value {value!r}")
            out["cpu_quota"] = _v2_int(key, parts[0])
            if len(parts) == 2:
                out["cpu_period"] = _v2_int(key, parts[1])
        elif key == "memory.max":
            out["memory_limit"] = _v2_int(key, value)
        elif key == "memory.low":
            out["memory_reservation"] = _v2_int(key, value)
        elif key == "memory.swap.max":
            out["_swap_only"] = _v2_int(key, value)
        elif key == "pids.max":
            out["pids_limit"] = _v2_int(key, value)
        elif key == "cpuset.cpus":
            out["cpuset_cpus"] = value
        elif key == "cpuset.mems":
            out["cpuset_mems"] = value
        elif key == "io.weight":
            out["blkio_weight"] = io_weight_to_blkio_weight(_v2_int(key, value.split()[-1]))
        elif m := _HUGETLB.match(key):
            hugepages[m.group(1)] = _v2_int(key, value)
        else:
            raise InvalidArgumentError(
                f"unified key {key!r} has no cgroup v1 equivalent and this host uses cgroup v1"
            )
    if hugepages:
        out["hugepage_limits"] = {**opts.hugepage_limits, **hugepages}
    return out


def build_resources(opts: ResourceOptions, *, cgroup_version: int) -> Resources:
    """The ``linux.resources`` section for a host with cgroup ``cgroup_version`` (1 or 2)."""
    if cgroup_version not in (1, 2):
        raise InvalidArgumentError(f"unknown cgroup version {cgroup_version}")
    values: dict[str, object] = {
        "cpu_shares": opts.cpu_shares,
        "cpu_quota": opts.cpu_quota,
        "cpu_period": opts.cpu_period,
        "cpuset_cpus": opts.cpuset_cpus,
        "cpuset_mems": opts.cpuset_mems,
        "memory_limit": opts.memory_limit,
        "memory_swap": opts.memory_swap,
        "memory_reservation": opts.memory_reservation,
        "pids_limit": opts.pids_limit,
        "blkio_weight": opts.blkio_weight,
        "hugepage_limits": dict(opts.hugepage_limits),
    }
    unified: dict[str, str] = {}
    if opts.cpu_weight is not None:
        if cgroup_version == 1 or opts.cpu_shares is not None:
            values["cpu_shares"] = values["cpu_shares"] or cpu_weight_to_shares(opts.cpu_weight)
        else:
            unified["cpu.weight"] = str(opts.cpu_weight)
    if cgroup_version == 1:
        values.update(_from_unified_v1(opts))
        swap_only = values.pop("_swap_only", None)
        if isinstance(swap_only, int):
            limit = values["memory_limit"]
            if swap_only == -1:
                values["memory_swap"] = -1
            elif not isinstance(limit, int) or limit <= 0:
                raise InvalidArgumentError(
                    "unified memory.swap.max needs a memory limit on cgroup v1"
                )
            else:
                values["memory_swap"] = limit + swap_only
    else:
        unified.update(opts.unified)

    shares = values["cpu_shares"]
    if isinstance(shares, int) and shares != 0 and not _MIN_SHARES <= shares <= _MAX_SHARES:
        raise InvalidArgumentError(f"cpu shares {shares} outside [{_MIN_SHARES}, {_MAX_SHARES}]")
    quota, period = values["cpu_quota"], values["cpu_period"]
    if isinstance(period, int) and period != 0 and not 1000 <= period <= 1_000_000:
        raise InvalidArgumentError(f"cpu period {period} outside [1000, 1000000] microseconds")
    if isinstance(quota, int) and quota not in (0, -1) and quota < 1000:
        raise InvalidArgumentError(f"cpu quota {quota} below 1000 microseconds")
    limit, swap = values["memory_limit"], values["memory_swap"]
    if isinstance(limit, int) and isinstance(swap, int):
        memory_swap_to_v2(swap, limit)  # validates the pair
    swappiness = opts.memory_swappiness
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise InvalidArgumentError(f"memory swappiness {swappiness} outside [0, 100]")

    def _int(key: str) -> int | None:
        v = values[key]
        return v if isinstance(v, int) else None

    cpu = CPU(
        shares=_int("cpu_shares") or None,
        quota=_int("cpu_quota") or None,
        period=_int("cpu_period") or None,
        cpus=str(values["cpuset_cpus"] or ""),
        mems=str(values["cpuset_mems"] or ""),
    )
    memory = Memory(
        limit=_int("memory_limit") or None,
        swap=_int("memory_swap") or None,
        reservation=_int("memory_reservation") or None,
        swappiness=swappiness if cgroup_version == 1 else None,
    )
    pids_limit = _int("pids_limit")
    blkio = _int("blkio_weight")
    hp = values["hugepage_limits"]
    hugepages = [
        HugepageLimit(page_size=size, limit=lim)
        for size, lim in sorted(hp.items())  # type: ignore[attr-defined]
    ]
    return Resources(
        devices=opts.devices,
        memory=memory if memory.to_dict() else None,
        cpu=cpu if cpu.to_dict() else None,
        pids=Pids(limit=pids_limit) if pids_limit else None,
        block_io=BlockIO(weight=blkio) if blkio else None,
        hugepage_limits=hugepages,
        unified=FrozenDict(unified),
    )
