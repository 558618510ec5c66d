"""Leaving out the resources a host has no cgroup controller for.

A runtime cannot set a limit in a controller that no hierarchy mounts (cgroup v1) or
that the parent cgroup does not offer (cgroup v2): runc fails the whole create ("cannot
set hugetlb limit: container could not join or create cgroup"). The kubelet sends some
resources whatever the node has (a hugepage limit for every page size the kernel knows,
CPU shares, quota and period), so a runtime drops what the host cannot enforce, as
CRI-O and containerd do. :func:`restrict_resources` is that rule on a built
``linux.resources``: pure data in, the kept part and the names of what was left out.
The caller detects the controllers (reading the cgroup file systems is its business).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ocispec._model import FrozenDict
from ocispec.runtime import CPU, Memory, Resources

__all__ = ["CgroupControllers", "restrict_resources"]

#: Prefixes of cgroup v2 files that belong to the core, not to a controller.
_CORE_PREFIXES = frozenset({"cgroup"})


@dataclass(frozen=True, kw_only=True)
class CgroupControllers:
    """The cgroup controllers a new container can use, and whether swap is accounted.

    ``unified``: a cgroup v2 host (controller names ``io``, ``cpu``, ...); otherwise v1
    names (``blkio``, ``cpu``, ``cpuset``, ``net_cls``...). ``swap``: the memory
    controller accounts swap (v1 ``memory.memsw.limit_in_bytes``, v2 ``memory.swap.max``).
    """

    available: frozenset[str]
    unified: bool = False
    swap: bool = False

    def has(self, controller: str) -> bool:
        """Whether ``controller`` can be used."""
        return controller in self.available


def _cpu(cpu: CPU, controllers: CgroupControllers, dropped: list[str]) -> CPU | None:
    """The CPU section without the fields of a missing cpu or cpuset controller."""
    changes: dict[str, Any] = {}
    if not controllers.has("cpu"):
        scheduler = {
            "shares": cpu.shares,
            "quota": cpu.quota,
            "burst": cpu.burst,
            "period": cpu.period,
            "realtime_runtime": cpu.realtime_runtime,
            "realtime_period": cpu.realtime_period,
            "idle": cpu.idle,
        }
        present = [name for name, value in scheduler.items() if value is not None]
        if present:
            dropped.append(f"cpu.{'/'.join(present)} (no cpu controller)")
            changes.update(dict.fromkeys(present))
    if not controllers.has("cpuset"):
        present = [name for name in ("cpus", "mems") if getattr(cpu, name)]
        if present:
            dropped.append(f"cpu.{'/'.join(present)} (no cpuset controller)")
            changes.update(dict.fromkeys(present, ""))
    kept = dataclasses.replace(cpu, **changes) if changes else cpu
    return kept if kept.to_dict() else None


def _memory(memory: Memory, controllers: CgroupControllers, dropped: list[str]) -> Memory | None:
    """The memory section, without swap when swap is not accounted."""
    if not controllers.has("memory"):
        dropped.append("memory (no memory controller)")
        return None
    if memory.swap is not None and not controllers.swap:
        dropped.append("memory.swap (no swap accounting)")
        memory = dataclasses.replace(memory, swap=None)
    return memory if memory.to_dict() else None


def _unified(
    unified: dict[str, str], controllers: CgroupControllers, dropped: list[str]
) -> dict[str, str]:
    kept: dict[str, str] = {}
    for key, value in unified.items():
        controller = key.partition(".")[0]
        if controller in _CORE_PREFIXES:
            kept[key] = value
        elif not controllers.has(controller):
            dropped.append(f"unified {key} (no {controller} controller)")
        elif key.startswith("memory.swap.") and not controllers.swap:
            dropped.append(f"unified {key} (no swap accounting)")
        else:
            kept[key] = value
    return kept


def restrict_resources(
    resources: Resources, controllers: CgroupControllers
) -> tuple[Resources, tuple[str, ...]]:
    """``resources`` without what ``controllers`` cannot enforce; also what was dropped.

    Device rules need the v1 ``devices`` controller (cgroup v2 enforces them with eBPF,
    no controller involved); block I/O needs ``blkio`` (v1) or ``io`` (v2); the
    ``network`` section needs ``net_cls``/``net_prio`` (v1 only, runc ignores it on v2).
    """
    dropped: list[str] = []
    changes: dict[str, Any] = {}
    if resources.cpu is not None:
        changes["cpu"] = _cpu(resources.cpu, controllers, dropped)
    if resources.memory is not None:
        changes["memory"] = _memory(resources.memory, controllers, dropped)
    if resources.pids is not None and not controllers.has("pids"):
        dropped.append("pids (no pids controller)")
        changes["pids"] = None
    if resources.hugepage_limits and not controllers.has("hugetlb"):
        sizes = ",".join(limit.page_size for limit in resources.hugepage_limits)
        dropped.append(f"hugepageLimits {sizes} (no hugetlb controller)")
        changes["hugepage_limits"] = ()
    block = "io" if controllers.unified else "blkio"
    if resources.block_io is not None and not controllers.has(block):
        dropped.append(f"blockIO (no {block} controller)")
        changes["block_io"] = None
    if resources.devices and not controllers.unified and not controllers.has("devices"):
        dropped.append("devices (no devices controller)")
        changes["devices"] = ()
    if resources.network is not None and not controllers.unified:
        network = resources.network
        if network.class_id is not None and not controllers.has("net_cls"):
            dropped.append("network.classID (no net_cls controller)")
            network = dataclasses.replace(network, class_id=None)
        if network.priorities and not controllers.has("net_prio"):
            dropped.append("network.priorities (no net_prio controller)")
            network = dataclasses.replace(network, priorities=())
        changes["network"] = network if network.to_dict() else None
    if resources.rdma and not controllers.has("rdma"):
        dropped.append("rdma (no rdma controller)")
        changes["rdma"] = FrozenDict()
    if resources.unified:
        unified = _unified(dict(resources.unified), controllers, dropped)
        if len(unified) != len(resources.unified):
            changes["unified"] = FrozenDict(unified)
    if not dropped:
        return resources, ()
    return dataclasses.replace(resources, **changes), tuple(dropped)
