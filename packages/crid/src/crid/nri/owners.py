"""Which plugin adjusted what: the ``OwningPlugins`` a ValidateContainerAdjustment
request carries, so validators can judge adjustments by who made them.

Compound fields (maps and lists) are owned entry by entry (annotation key, mount
destination, variable name, device path...), simple fields as a whole; a later plugin
touching the same entry becomes its owner (crid applies adjustments in plugin order,
the later one winning).
"""

from __future__ import annotations

from collections.abc import Sequence

from crid._nri.v1alpha1 import api_pb2 as api

__all__ = ["merge_adjustments", "owning_plugins"]

_MEMORY = (
    ("limit", api.MemLimit),
    ("reservation", api.MemReservation),
    ("swap", api.MemSwapLimit),
    ("kernel", api.MemKernelLimit),
    ("kernel_tcp", api.MemTCPLimit),
    ("swappiness", api.MemSwappiness),
    ("disable_oom_killer", api.MemDisableOomKiller),
    ("use_hierarchy", api.MemUseHierarchy),
)
_CPU = (
    ("shares", api.CPUShares),
    ("quota", api.CPUQuota),
    ("period", api.CPUPeriod),
    ("realtime_runtime", api.CPURealtimeRuntime),
    ("realtime_period", api.CPURealtimePeriod),
)


def _key(name: str) -> str:
    return name[1:] if name.startswith("-") else name


def owning_plugins(
    container_id: str, adjustments: Sequence[tuple[str, api.ContainerAdjustment]]
) -> api.OwningPlugins:
    out = api.OwningPlugins()
    owners = out.owners[container_id]

    def entry(field: int, key: str, plugin: str) -> None:
        owners.compound[field].owners[_key(key)] = plugin

    for plugin, adjust in adjustments:
        for key in adjust.annotations:
            entry(api.Annotations, key, plugin)
        for mount in adjust.mounts:
            entry(api.Mounts, mount.destination, plugin)
        for pair in adjust.env:
            entry(api.Env, pair.key, plugin)
        for rlimit in adjust.rlimits:
            entry(api.Rlimits, rlimit.type, plugin)
        for cdi in adjust.CDI_devices:
            entry(api.CdiDevices, cdi.name, plugin)
        if adjust.args:
            owners.simple[api.Args] = plugin
        if adjust.HasField("hooks"):
            owners.simple[api.OciHooks] = plugin
        if not adjust.HasField("linux"):
            continue
        linux = adjust.linux
        for device in linux.devices:
            entry(api.Devices, device.path, plugin)
        for namespace in linux.namespaces:
            entry(api.Namespace, namespace.type, plugin)
        for key in linux.sysctl:
            entry(api.Sysctl, key, plugin)
        if linux.cgroups_path:
            owners.simple[api.CgroupsPath] = plugin
        if linux.HasField("oom_score_adj"):
            owners.simple[api.OomScoreAdj] = plugin
        if linux.HasField("seccomp_policy"):
            owners.simple[api.SeccompPolicy] = plugin
        resources = linux.resources
        for name, field in _MEMORY:
            if resources.memory.HasField(name):
                owners.simple[field] = plugin
        for name, field in _CPU:
            if resources.cpu.HasField(name):
                owners.simple[field] = plugin
        if resources.cpu.cpus:
            owners.simple[api.CPUSetCPUs] = plugin
        if resources.cpu.mems:
            owners.simple[api.CPUSetMems] = plugin
        if resources.HasField("pids"):
            owners.simple[api.PidsLimit] = plugin
        for limit in resources.hugepage_limits:
            entry(api.HugepageLimits, limit.page_size, plugin)
        for key in resources.unified:
            entry(api.CgroupsUnified, key, plugin)
    return out


def merge_adjustments(
    adjustments: Sequence[tuple[str, api.ContainerAdjustment]],
) -> api.ContainerAdjustment:
    """One adjustment equivalent to applying ``adjustments`` in order: lists are
    concatenated (they apply entry by entry), maps and single values of a later
    plugin replace an earlier one's."""
    merged = api.ContainerAdjustment()
    for _, adjust in adjustments:
        merged.MergeFrom(adjust)
        if adjust.args:  # a command replaces, it does not extend
            del merged.args[:]
            merged.args.extend(adjust.args)
        if adjust.linux.HasField("seccomp_policy"):
            merged.linux.seccomp_policy.CopyFrom(adjust.linux.seccomp_policy)
    return merged
