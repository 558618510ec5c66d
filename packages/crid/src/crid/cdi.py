"""Container Device Interface: resolving ``vendor/class=name`` devices to OCI edits.

CDI spec files (JSON or YAML) in the configured directories describe devices by kind
(``vendor/class``) and name, each with ``containerEdits`` (environment, device nodes,
mounts, hooks, additional GIDs); the spec itself may carry edits every device of it
gets. A later directory overrides an earlier one for the same device, as CDI's own
registry does. Requests come from the CRI (``ContainerConfig.CDI_devices`` and
``cdi.k8s.io/*`` annotations) and from NRI plugins' adjustments; both go through
:func:`inject`, which edits the OCI config dict or raises without touching it.

Blocking (it reads files and stats device nodes): call it from a worker thread.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crid._cri.v1 import api_pb2
from crid.errors import InvalidConfigError
from ocispec.errors import SpecError
from ocispec.runtime import Spec
from ocispec.schema import Schema, validate

__all__ = [
    "ANNOTATION_PREFIX",
    "annotation_devices",
    "cri_devices",
    "inject",
    "inject_spec",
    "parse_name",
]

#: Annotation keys under which the kubelet (older device plugins) names CDI devices.
ANNOTATION_PREFIX = "cdi.k8s.io/"

_VENDOR = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_CLASS = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
_PERMISSIONS = re.compile(r"^(?!.*(.).*\1)[rwm]{1,3}$")
_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class _Device:
    source: Path
    spec_edits: Mapping[str, Any]
    edits: Mapping[str, Any]


def parse_name(name: str) -> tuple[str, str, str]:
    """``vendor/class=name`` split into its three parts; anything else is refused."""
    kind, sep, device = name.partition("=")
    vendor, slash, klass = kind.partition("/")
    if not (sep and slash and _VENDOR.match(vendor) and _CLASS.match(klass)):
        raise InvalidConfigError(f"CDI device {name!r} is not a qualified vendor/class=name")
    if not _NAME.match(device):
        raise InvalidConfigError(f"CDI device {name!r} has an invalid device name")
    return vendor, klass, device


def annotation_devices(annotations: Mapping[str, str]) -> list[str]:
    """Device names listed (comma-separated) in ``cdi.k8s.io/*`` annotations."""
    names: list[str] = []
    for key in sorted(annotations):
        if key.startswith(ANNOTATION_PREFIX):
            names.extend(n.strip() for n in annotations[key].split(",") if n.strip())
    return names


def _read(path: Path) -> Mapping[str, Any]:
    # yaml only for YAML specs: importing it costs the daemon memory for its whole life.
    import yaml

    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise InvalidConfigError(f"CDI spec {path} is unreadable: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise InvalidConfigError(f"CDI spec {path} is unreadable: no 'kind'")
    vendor, _, klass = data["kind"].partition("/")
    if not (_VENDOR.match(vendor) and _CLASS.match(klass)):
        raise InvalidConfigError(f"CDI spec {path}: kind {data['kind']!r} is not vendor/class")
    if not isinstance(data.get("devices"), list):
        raise InvalidConfigError(f"CDI spec {path} is unreadable: no 'devices' list")
    return data


def _registry(dirs: Iterable[str]) -> dict[str, _Device]:
    """Every device the spec files define, by qualified name; later dirs win."""
    found: dict[str, _Device] = {}
    for directory in dirs:
        base = Path(directory)
        try:
            files = sorted(p for p in base.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        except FileNotFoundError:
            continue
        except OSError as err:
            raise InvalidConfigError(f"CDI spec directory {base} is unreadable: {err}") from err
        for path in files:
            data = _read(path)
            spec_edits = data.get("containerEdits") or {}
            for entry in data["devices"]:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise InvalidConfigError(f"CDI spec {path}: a device has no name")
                edits = entry.get("containerEdits") or {}
                if not isinstance(edits, dict) or not isinstance(spec_edits, dict):
                    raise InvalidConfigError(f"CDI spec {path}: containerEdits is not a map")
                found[f"{data['kind']}={entry['name']}"] = _Device(path, spec_edits, edits)
    return found


def _env(process: dict[str, Any], entries: Sequence[str]) -> None:
    env: list[str] = list(process.get("env") or [])
    for entry in entries:
        name = entry.partition("=")[0]
        env = [item for item in env if item.partition("=")[0] != name]
        env.append(entry)
    process["env"] = env


def _device_node(node: Mapping[str, Any], source: Path) -> dict[str, Any]:
    path = node.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidConfigError(f"CDI spec {source}: device node path {path!r} is not absolute")
    host_path = node.get("hostPath") or path
    kind = node.get("type")
    major, minor = node.get("major"), node.get("minor")
    if major is None or minor is None or not kind:
        try:
            info = Path(host_path).stat()
        except OSError as err:
            raise InvalidConfigError(
                f"CDI spec {source}: device node {host_path} cannot be read: {err}"
            ) from err
        if stat.S_ISBLK(info.st_mode):
            found = "b"
        elif stat.S_ISCHR(info.st_mode):
            found = "c"
        elif stat.S_ISFIFO(info.st_mode):
            found = "p"
        else:
            raise InvalidConfigError(f"CDI spec {source}: {host_path} is not a device node")
        kind = kind or found
        if major is None or minor is None:
            major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
        node = {**node, "fileMode": node.get("fileMode", stat.S_IMODE(info.st_mode))}
    out: dict[str, Any] = {"path": path, "type": kind}
    if kind != "p":
        out["major"], out["minor"] = int(major), int(minor)
    for key in ("fileMode", "uid", "gid"):
        if node.get(key) is not None:
            out[key] = int(node[key])
    return out


def _devices(linux: dict[str, Any], nodes: Sequence[Mapping[str, Any]], source: Path) -> None:
    rules: list[dict[str, Any]] = linux.setdefault("resources", {}).setdefault("devices", [])
    current: list[dict[str, Any]] = list(linux.get("devices") or [])
    for node in nodes:
        device = _device_node(node, source)
        current = [d for d in current if d.get("path") != device["path"]]
        current.append(device)
        if device["type"] in ("b", "c"):
            access = node.get("permissions") or "rwm"
            if not isinstance(access, str) or not _PERMISSIONS.match(access):
                raise InvalidConfigError(
                    f"CDI spec {source}: device node {device['path']} has invalid"
                    f" permissions {access!r} (a subset of 'rwm')"
                )
            rules.append(
                {
                    "allow": True,
                    "type": device["type"],
                    "major": device["major"],
                    "minor": device["minor"],
                    "access": access,
                }
            )
    linux["devices"] = current


def _mounts(spec: dict[str, Any], entries: Sequence[Mapping[str, Any]], source: Path) -> None:
    mounts: list[dict[str, Any]] = list(spec.get("mounts") or [])
    for entry in entries:
        host, target = entry.get("hostPath"), entry.get("containerPath")
        if not isinstance(host, str) or not isinstance(target, str):
            raise InvalidConfigError(f"CDI spec {source}: a mount lacks hostPath/containerPath")
        mounts = [m for m in mounts if m.get("destination") != target]
        options = list(entry.get("options") or [])
        kind = entry.get("type") or "bind"
        if kind == "bind" and not {"bind", "rbind"} & set(options):
            options.append("bind")
        mounts.append({"destination": target, "type": kind, "source": host, "options": options})
    spec["mounts"] = mounts


def _hooks(spec: dict[str, Any], entries: Sequence[Mapping[str, Any]], source: Path) -> None:
    hooks: dict[str, list[dict[str, Any]]] = spec.setdefault("hooks", {})
    for entry in entries:
        name, path = entry.get("hookName"), entry.get("path")
        if name not in (
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ) or not isinstance(path, str):
            raise InvalidConfigError(f"CDI spec {source}: hook {name!r} ({path!r}) is invalid")
        hook: dict[str, Any] = {"path": path}
        for key in ("args", "env", "timeout"):
            if entry.get(key) is not None:
                hook[key] = entry[key]
        hooks.setdefault(name, []).append(hook)


def _apply(spec: dict[str, Any], edits: Mapping[str, Any], source: Path) -> None:
    process: dict[str, Any] = spec.setdefault("process", {})
    if edits.get("env"):
        _env(process, list(edits["env"]))
    if edits.get("deviceNodes"):
        _devices(spec.setdefault("linux", {}), list(edits["deviceNodes"]), source)
    if edits.get("mounts"):
        _mounts(spec, list(edits["mounts"]), source)
    if edits.get("hooks"):
        _hooks(spec, list(edits["hooks"]), source)
    if edits.get("additionalGids"):
        user: dict[str, Any] = process.setdefault("user", {"uid": 0, "gid": 0})
        gids = list(user.get("additionalGids") or [])
        user["additionalGids"] = gids + [g for g in edits["additionalGids"] if g not in gids]
    if edits.get("intelRdt"):
        raise InvalidConfigError(f"CDI spec {source}: intelRdt edits are not supported")


def inject(spec: dict[str, Any], names: Sequence[str], dirs: Iterable[str]) -> None:
    """Apply the edits of CDI devices ``names`` to ``spec`` (an OCI config dict).

    All or nothing: an unknown device, a malformed name or an unreadable spec file
    raises :class:`InvalidConfigError` naming it and ``spec`` is left as it was.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    for name in wanted:
        parse_name(name)
    dirs = list(dirs)
    registry = _registry(dirs)
    unknown = [name for name in wanted if name not in registry]
    if unknown:
        raise InvalidConfigError(
            f"unknown CDI device(s) {', '.join(unknown)}: no spec in {', '.join(dirs)} defines them"
        )
    edited = copy.deepcopy(spec)
    applied_specs: set[tuple[Path, int]] = set()
    for name in wanted:
        device = registry[name]
        key = (device.source, id(device.spec_edits))
        if key not in applied_specs:
            applied_specs.add(key)
            _apply(edited, device.spec_edits, device.source)
        _apply(edited, device.edits, device.source)
    spec.clear()
    spec.update(edited)


def cri_devices(config: bytes) -> list[str]:
    """The CDI devices a serialized CRI ContainerConfig asks for: its ``CDI_devices``
    and its ``cdi.k8s.io/*`` annotations (the kubelet's older way)."""
    parsed = api_pb2.ContainerConfig.FromString(config)
    names = [device.name for device in parsed.CDI_devices]
    return names + annotation_devices(dict(parsed.annotations))


def inject_spec(spec: Spec, names: Sequence[str], dirs: Iterable[str]) -> Spec:
    """:func:`inject` on a typed spec; the result is checked against the OCI schema."""
    edited = spec.to_dict()
    inject(edited, names, dirs)
    try:
        validate(edited, Schema.RUNTIME_CONFIG)
        return Spec.from_dict(edited)
    except SpecError as err:
        raise InvalidConfigError(f"CDI devices make an invalid OCI config: {err}") from err
