"""Applying a plugin's ContainerAdjustment to the OCI config crid generated.

The config is edited as its JSON dict, then re-validated by ocispec, so a plugin cannot
produce a config the schema refuses. A key, mount destination, variable name or
device path written with a leading ``-`` removes that entry (NRI's "mark for
removal"); ``args`` whose first element is empty replace the command without
complaint (NRI's ``UpdateArgs``). Resources go through ocispec's ``build_resources``,
so their v1/v2 form is what CreateContainer itself would write.

CDI devices are resolved from the configured CDI spec directories (``crid.cdi``) after
the other adjustments. Adjustments crid cannot honour are refused with an error that
names them, rather than dropped: I/O priority, scheduler, RDT, block I/O and RDT
classes, memory policy and network devices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crid._nri.v1alpha1 import api_pb2 as api
from crid.cdi import inject
from crid.errors import InvalidConfigError
from crid.nri.convert import resource_options
from ocispec.generate import build_resources

__all__ = ["apply_adjustment", "unsupported"]

_HOOK_KINDS = (
    ("prestart", "prestart"),
    ("create_runtime", "createRuntime"),
    ("create_container", "createContainer"),
    ("start_container", "startContainer"),
    ("poststart", "poststart"),
    ("poststop", "poststop"),
)


def _removal(key: str) -> str | None:
    return key[1:] if key.startswith("-") else None


def unsupported(adjust: api.ContainerAdjustment) -> list[str]:
    """The parts of ``adjust`` crid does not apply (empty: all of it applies)."""
    found = []
    linux = adjust.linux
    for field, what in (
        ("io_priority", "I/O priority"),
        ("scheduler", "scheduler"),
        ("rdt", "RDT"),
        ("memory_policy", "memory policy"),
    ):
        if linux.HasField(field):
            found.append(what)
    if linux.net_devices:
        found.append("network devices")
    resources = linux.resources
    if resources.HasField("blockio_class"):
        found.append("block I/O class")
    if resources.HasField("rdt_class"):
        found.append("RDT class")
    return found


def _set_entries(
    entries: list[dict[str, Any]], key: str, name: str, make: Callable[[], dict[str, Any]]
) -> list[dict[str, Any]]:
    """``entries`` with the one whose ``key`` is ``name`` removed (a ``-name``) or
    replaced by ``make()`` (appended when new)."""
    removed = _removal(name)
    target = removed if removed is not None else name
    kept = [entry for entry in entries if entry.get(key) != target]
    if removed is None:
        kept.append(make())
    return kept


def _env(process: dict[str, Any], adjust: api.ContainerAdjustment) -> None:
    env: list[str] = list(process.get("env") or [])
    for pair in adjust.env:
        removed = _removal(pair.key)
        name = removed if removed is not None else pair.key
        env = [item for item in env if item.partition("=")[0] != name]
        if removed is None:
            env.append(f"{pair.key}={pair.value}")
    process["env"] = env


def _hook(hook: api.Hook) -> dict[str, Any]:
    out: dict[str, Any] = {"path": hook.path}
    if hook.args:
        out["args"] = list(hook.args)
    if hook.env:
        out["env"] = list(hook.env)
    if hook.HasField("timeout"):
        out["timeout"] = hook.timeout.value
    return out


def _device(device: api.LinuxDevice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": device.path,
        "type": device.type,
        "major": device.major,
        "minor": device.minor,
    }
    if device.HasField("file_mode"):
        out["fileMode"] = device.file_mode.value
    if device.HasField("uid"):
        out["uid"] = device.uid.value
    if device.HasField("gid"):
        out["gid"] = device.gid.value
    return out


def _devices(linux: dict[str, Any], devices: list[api.LinuxDevice]) -> None:
    rules: list[dict[str, Any]] = linux.setdefault("resources", {}).setdefault("devices", [])
    current: list[dict[str, Any]] = list(linux.get("devices") or [])
    for device in devices:
        removed = _removal(device.path)
        path = removed if removed is not None else device.path
        gone = [d for d in current if d.get("path") == path]
        current = [d for d in current if d.get("path") != path]
        for old in gone:
            rules[:] = [
                r
                for r in rules
                if not (
                    r.get("allow")
                    and r.get("major") == old.get("major")
                    and r.get("minor") == old.get("minor")
                    and r.get("type") == old.get("type")
                )
            ]
        if removed is None:
            current.append(_device(device))
            rules.append(
                {
                    "allow": True,
                    "type": device.type,
                    "major": device.major,
                    "minor": device.minor,
                    "access": "rwm",
                }
            )
    linux["devices"] = current


def _resources(linux: dict[str, Any], resources: api.LinuxResources, cgroup_version: int) -> None:
    built = build_resources(resource_options(resources), cgroup_version=cgroup_version).to_dict()
    target: dict[str, Any] = linux.setdefault("resources", {})
    for section, value in built.items():
        if section == "devices":
            continue  # crid's own allow-list stays; devices come from linux.devices
        if isinstance(value, dict) and isinstance(target.get(section), dict):
            target[section] = {**target[section], **value}
        elif section == "hugepageLimits":
            sizes = {limit["pageSize"] for limit in value}
            kept = [h for h in target.get(section) or () if h["pageSize"] not in sizes]
            target[section] = kept + list(value)
        else:
            target[section] = value


def _seccomp(policy: api.LinuxSeccomp) -> dict[str, Any]:
    out: dict[str, Any] = {"defaultAction": policy.default_action}
    if policy.HasField("default_errno"):
        out["defaultErrnoRet"] = policy.default_errno.value
    if policy.architectures:
        out["architectures"] = list(policy.architectures)
    if policy.flags:
        out["flags"] = list(policy.flags)
    if policy.listener_path:
        out["listenerPath"] = policy.listener_path
    if policy.listener_metadata:
        out["listenerMetadata"] = policy.listener_metadata
    syscalls = []
    for call in policy.syscalls:
        entry: dict[str, Any] = {"names": list(call.names), "action": call.action}
        if call.HasField("errno_ret"):
            entry["errnoRet"] = call.errno_ret.value
        if call.args:
            entry["args"] = [
                {"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}
                for a in call.args
            ]
        syscalls.append(entry)
    if syscalls:
        out["syscalls"] = syscalls
    return out


def apply_adjustment(
    spec: dict[str, Any],
    adjust: api.ContainerAdjustment,
    *,
    cgroup_version: int,
    cdi_spec_dirs: Sequence[str] = (),
) -> None:
    """Edit ``spec`` (an OCI config as a dict) in place as ``adjust`` asks; CDI devices
    come from specs in ``cdi_spec_dirs`` (reads files: call it from a worker thread)."""
    refused = unsupported(adjust)
    if refused:
        raise InvalidConfigError(
            "an NRI plugin asked for adjustments crid does not support: " + "; ".join(refused)
        )
    _apply(spec, adjust, cgroup_version)
    if adjust.CDI_devices:
        inject(spec, [d.name for d in adjust.CDI_devices], cdi_spec_dirs)


def _apply(spec: dict[str, Any], adjust: api.ContainerAdjustment, cgroup_version: int) -> None:
    annotations: dict[str, str] = spec.setdefault("annotations", {})
    for key, value in adjust.annotations.items():
        removed = _removal(key)
        if removed is not None:
            annotations.pop(removed, None)
        else:
            annotations[key] = value
    mounts: list[dict[str, Any]] = list(spec.get("mounts") or [])
    for mount in adjust.mounts:
        mounts = _set_entries(
            mounts,
            "destination",
            mount.destination,
            lambda m=mount: {  # type: ignore[misc]
                "destination": m.destination,
                "type": m.type,
                "source": m.source,
                "options": list(m.options),
            },
        )
    spec["mounts"] = mounts
    process: dict[str, Any] = spec.setdefault("process", {})
    _env(process, adjust)
    if adjust.args:
        args = list(adjust.args)
        process["args"] = args[1:] if args[0] == "" else args
    for rlimit in adjust.rlimits:
        limits = [r for r in process.get("rlimits") or () if r["type"] != rlimit.type]
        process["rlimits"] = [
            *limits,
            {"type": rlimit.type, "hard": rlimit.hard, "soft": rlimit.soft},
        ]
    if adjust.HasField("hooks"):
        hooks: dict[str, list[dict[str, Any]]] = spec.setdefault("hooks", {})
        for field, oci in _HOOK_KINDS:
            for hook in getattr(adjust.hooks, field):
                hooks.setdefault(oci, []).append(_hook(hook))
    if not adjust.HasField("linux"):
        return
    wanted = adjust.linux
    linux: dict[str, Any] = spec.setdefault("linux", {})
    if wanted.devices:
        _devices(linux, list(wanted.devices))
    if wanted.HasField("resources"):
        _resources(linux, wanted.resources, cgroup_version)
    if wanted.cgroups_path:
        linux["cgroupsPath"] = wanted.cgroups_path
    if wanted.HasField("oom_score_adj"):
        process["oomScoreAdj"] = wanted.oom_score_adj.value
    if wanted.HasField("seccomp_policy"):
        linux["seccomp"] = _seccomp(wanted.seccomp_policy)
    for namespace in wanted.namespaces:
        entries: list[dict[str, Any]] = list(linux.get("namespaces") or [])
        linux["namespaces"] = _set_entries(
            entries,
            "type",
            namespace.type,
            lambda n=namespace: {"type": n.type, **({"path": n.path} if n.path else {})},  # type: ignore[misc]
        )
    if wanted.sysctl:
        sysctl: dict[str, str] = linux.setdefault("sysctl", {})
        for key, value in wanted.sysctl.items():
            removed = _removal(key)
            if removed is not None:
                sysctl.pop(removed, None)
            else:
                sysctl[key] = value
