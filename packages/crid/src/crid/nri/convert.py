"""crid's records and OCI configs as NRI messages, and NRI resources as crid's options.

Pods come from their :class:`~crid.state.Sandbox` records; containers from their
records plus the OCI config crid wrote for them (args, env, mounts, hooks, devices,
resources, rlimits), which is what plugins adjust.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crid._cri.v1 import api_pb2 as cri
from crid._nri.v1alpha1 import api_pb2 as api
from crid.state import Container, ContainerState, Sandbox
from ocispec.generate import ResourceOptions

__all__ = [
    "cri_resources_to_nri",
    "nri_container",
    "nri_pod",
    "options_to_nri",
    "resource_options",
    "resources_from_spec",
]

_STATES = {
    ContainerState.CREATED: api.CONTAINER_CREATED,
    ContainerState.RUNNING: api.CONTAINER_RUNNING,
    ContainerState.EXITED: api.CONTAINER_STOPPED,
    ContainerState.UNKNOWN: api.CONTAINER_UNKNOWN,
}
_HOOK_KINDS = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}


def nri_pod(sandbox: Sandbox) -> api.PodSandbox:
    pod = api.PodSandbox(
        id=sandbox.id,
        name=sandbox.meta.name,
        uid=sandbox.meta.uid,
        namespace=sandbox.meta.namespace,
        labels=sandbox.labels,
        annotations=sandbox.annotations,
        runtime_handler=sandbox.runtime_handler,
        ips=list(sandbox.ips),
    )
    pod.linux.cgroup_parent = sandbox.cgroup_parent
    if sandbox.config:
        linux = cri.PodSandboxConfig.FromString(sandbox.config).linux
        if linux.HasField("overhead"):
            pod.linux.pod_overhead.CopyFrom(cri_resources_to_nri(linux.overhead))
        if linux.HasField("resources"):
            pod.linux.pod_resources.CopyFrom(cri_resources_to_nri(linux.resources))
    for kind, path in sorted(sandbox.namespaces.items()):
        pod.linux.namespaces.add(type=kind, path=path)
    return pod


def _hooks(target: api.Hooks, hooks: Mapping[str, Any]) -> None:
    for oci_name, field in _HOOK_KINDS.items():
        for hook in hooks.get(oci_name) or ():
            added = getattr(target, field).add(
                path=hook.get("path", ""), args=hook.get("args") or [], env=hook.get("env") or []
            )
            if hook.get("timeout") is not None:
                added.timeout.value = int(hook["timeout"])


def _optional(target: Any, name: str, value: Any) -> None:
    if value is not None:
        getattr(target, name).value = value


def resources_from_spec(resources: Mapping[str, Any]) -> api.LinuxResources:
    """An OCI ``linux.resources`` section as NRI LinuxResources."""
    out = api.LinuxResources()
    memory = resources.get("memory") or {}
    for oci, field in (
        ("limit", "limit"),
        ("reservation", "reservation"),
        ("swap", "swap"),
        ("kernel", "kernel"),
        ("kernelTCP", "kernel_tcp"),
        ("swappiness", "swappiness"),
        ("disableOOMKiller", "disable_oom_killer"),
        ("useHierarchy", "use_hierarchy"),
    ):
        _optional(out.memory, field, memory.get(oci))
    cpu = resources.get("cpu") or {}
    for oci, field in (
        ("shares", "shares"),
        ("quota", "quota"),
        ("period", "period"),
        ("realtimeRuntime", "realtime_runtime"),
        ("realtimePeriod", "realtime_period"),
    ):
        _optional(out.cpu, field, cpu.get(oci))
    out.cpu.cpus = cpu.get("cpus") or ""
    out.cpu.mems = cpu.get("mems") or ""
    for limit in resources.get("hugepageLimits") or ():
        out.hugepage_limits.add(page_size=limit["pageSize"], limit=limit["limit"])
    if (resources.get("pids") or {}).get("limit") is not None:
        out.pids.limit = resources["pids"]["limit"]
    out.unified.update(resources.get("unified") or {})
    for rule in resources.get("devices") or ():
        device = out.devices.add(
            allow=bool(rule.get("allow")), type=rule.get("type") or "", access=rule.get("access")
        )
        _optional(device, "major", rule.get("major"))
        _optional(device, "minor", rule.get("minor"))
    return out


def nri_container(record: Container, spec: Mapping[str, Any] | None = None) -> api.Container:
    """The container as plugins see it; ``spec`` is its OCI config (as a dict) if known."""
    ctr = api.Container(
        id=record.id,
        pod_sandbox_id=record.sandbox_id,
        name=record.meta.name,
        state=_STATES[record.state],
        labels=record.labels,
        annotations=record.annotations,
        pid=max(record.pid, 0),
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        exit_code=record.exit_code,
        status_reason=record.reason,
        status_message=record.message,
    )
    ctr.image.name = record.image
    ctr.image.digest = record.image_ref.partition("@")[2] or ""
    ctr.image.config_digest = record.image_id and f"sha256:{record.image_id}"
    if record.user is not None:
        ctr.user.uid = record.user.uid
        ctr.user.gid = record.user.gid
        ctr.user.additional_gids.extend(record.user.supplemental_groups)
    ctr.linux.cgroups_path = record.cgroup_path
    if spec is None:
        return ctr
    process = spec.get("process") or {}
    ctr.args.extend(process.get("args") or [])
    ctr.env.extend(process.get("env") or [])
    for rlimit in process.get("rlimits") or ():
        ctr.rlimits.add(type=rlimit["type"], hard=rlimit["hard"], soft=rlimit["soft"])
    if process.get("oomScoreAdj") is not None:
        ctr.linux.oom_score_adj.value = process["oomScoreAdj"]
    for mount in spec.get("mounts") or ():
        ctr.mounts.add(
            destination=mount.get("destination", ""),
            type=mount.get("type") or "",
            source=mount.get("source") or "",
            options=mount.get("options") or [],
        )
    _hooks(ctr.hooks, spec.get("hooks") or {})
    linux = spec.get("linux") or {}
    for namespace in linux.get("namespaces") or ():
        ctr.linux.namespaces.add(type=namespace["type"], path=namespace.get("path") or "")
    for device in linux.get("devices") or ():
        added = ctr.linux.devices.add(
            path=device["path"],
            type=device.get("type") or "",
            major=device.get("major") or 0,
            minor=device.get("minor") or 0,
        )
        _optional(added, "file_mode", device.get("fileMode"))
        _optional(added, "uid", device.get("uid"))
        _optional(added, "gid", device.get("gid"))
    ctr.linux.resources.CopyFrom(resources_from_spec(linux.get("resources") or {}))
    ctr.linux.cgroups_path = linux.get("cgroupsPath") or record.cgroup_path
    ctr.linux.sysctl.update(linux.get("sysctl") or {})
    return ctr


def resource_options(resources: api.LinuxResources) -> ResourceOptions:
    """NRI LinuxResources as the options crid builds ``linux.resources`` from (the
    fields a plugin left unset stay unset)."""
    memory, cpu = resources.memory, resources.cpu

    def get(message: Any, field: str) -> Any:
        return getattr(message, field).value if message.HasField(field) else None

    return ResourceOptions(
        cpu_shares=get(cpu, "shares") if resources.HasField("cpu") else None,
        cpu_quota=get(cpu, "quota") if resources.HasField("cpu") else None,
        cpu_period=get(cpu, "period") if resources.HasField("cpu") else None,
        cpuset_cpus=cpu.cpus,
        cpuset_mems=cpu.mems,
        memory_limit=get(memory, "limit") if resources.HasField("memory") else None,
        memory_swap=get(memory, "swap") if resources.HasField("memory") else None,
        memory_reservation=get(memory, "reservation") if resources.HasField("memory") else None,
        memory_swappiness=get(memory, "swappiness") if resources.HasField("memory") else None,
        pids_limit=resources.pids.limit if resources.HasField("pids") else None,
        hugepage_limits={h.page_size: h.limit for h in resources.hugepage_limits},
        unified=dict(resources.unified),
    )


def options_to_nri(options: ResourceOptions) -> api.LinuxResources:
    """crid's resource options (as an update request gives them) as NRI LinuxResources."""
    out = api.LinuxResources()
    for field, value in (
        ("shares", options.cpu_shares),
        ("quota", options.cpu_quota),
        ("period", options.cpu_period),
    ):
        if value is not None:
            getattr(out.cpu, field).value = value
    out.cpu.cpus = options.cpuset_cpus
    out.cpu.mems = options.cpuset_mems
    for field, value in (
        ("limit", options.memory_limit),
        ("swap", options.memory_swap),
        ("reservation", options.memory_reservation),
        ("swappiness", options.memory_swappiness),
    ):
        if value is not None:
            getattr(out.memory, field).value = value
    if options.pids_limit is not None:
        out.pids.limit = options.pids_limit
    for size, limit in options.hugepage_limits.items():
        out.hugepage_limits.add(page_size=size, limit=limit)
    out.unified.update(options.unified)
    return out


def cri_resources_to_nri(resources: cri.LinuxContainerResources) -> api.LinuxResources:
    """A CRI update request's resources as NRI LinuxResources."""
    out = api.LinuxResources()
    if resources.cpu_shares:
        out.cpu.shares.value = resources.cpu_shares
    if resources.cpu_quota:
        out.cpu.quota.value = resources.cpu_quota
    if resources.cpu_period:
        out.cpu.period.value = resources.cpu_period
    out.cpu.cpus = resources.cpuset_cpus
    out.cpu.mems = resources.cpuset_mems
    if resources.memory_limit_in_bytes:
        out.memory.limit.value = resources.memory_limit_in_bytes
    if resources.memory_swap_limit_in_bytes:
        out.memory.swap.value = resources.memory_swap_limit_in_bytes
    for limit in resources.hugepage_limits:
        out.hugepage_limits.add(page_size=limit.page_size, limit=limit.limit)
    out.unified.update(resources.unified)
    return out
