"""CNI network configurations: parsing, validation and loading a configuration directory.

A single-plugin ``.conf`` is turned into a one-plugin list, so the rest of ocinet only
deals with lists. A directory's networks are ordered by file name: the first valid one is
the default network, as CRI-O and containerd choose it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocinet.errors import ConfigError
from ocinet.version import SUPPORTED_VERSIONS, highest_supported

__all__ = [
    "CONFIG_EXTENSIONS",
    "ConfigDirContents",
    "NetworkConfig",
    "PluginConfig",
    "load_config_dir",
    "load_network_config",
    "parse_network_config",
]

log = logging.getLogger(__name__)

#: File name endings read from a configuration directory.
CONFIG_EXTENSIONS = (".conflist", ".conf", ".json")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


@dataclass(frozen=True, kw_only=True)
class PluginConfig:
    """One plugin of a network: its ``type`` and the capabilities it declares."""

    type: str
    capabilities: frozenset[str] = frozenset()
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """A network: a named, versioned plugin chain (a ``.conflist``, or a ``.conf`` lifted)."""

    name: str
    cni_version: str
    plugins: tuple[PluginConfig, ...]
    disable_check: bool = False
    disable_gc: bool = False
    source: Path | None = None
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def plugin_types(self) -> tuple[str, ...]:
        """The plugin binaries the chain runs, in ADD order."""
        return tuple(p.type for p in self.plugins)


@dataclass(frozen=True, kw_only=True)
class ConfigDirContents:
    """What a configuration directory holds: valid networks by file name, and rejected files."""

    networks: tuple[NetworkConfig, ...]
    errors: tuple[tuple[Path, str], ...]


def parse_network_config(
    data: bytes | str | Mapping[str, Any], *, source: Path | None = None
) -> NetworkConfig:
    """Parse and validate a network list or a single-plugin network configuration."""
    where = f"{source}: " if source is not None else ""
    if isinstance(data, Mapping):
        obj: Any = dict(data)
        raw = json.dumps(obj).encode()
    else:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        try:
            obj = json.loads(raw)
        except ValueError as err:
            raise ConfigError(f"{where}not valid JSON: {err}") from err
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}a network configuration must be a JSON object")

    if "plugins" not in obj:
        if "type" not in obj:
            raise ConfigError(f"{where}neither a plugin list nor a plugin (no 'plugins', 'type')")
        # A single plugin: lift it into a list, as libcni does, with the same name/version.
        lifted = {"name": obj.get("name"), "cniVersion": obj.get("cniVersion"), "plugins": [obj]}
        return _build(lifted, raw, source, where)
    return _build(obj, raw, source, where)


def _build(obj: dict[str, Any], raw: bytes, source: Path | None, where: str) -> NetworkConfig:
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}missing or invalid network name {name!r}")
    version = _pick_version(obj, where)
    plugins = obj.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise ConfigError(f"{where}network {name!r} has no plugins")
    parsed = tuple(_parse_plugin(p, name, where) for p in plugins)
    for key in ("disableCheck", "disableGC"):
        if key in obj and not isinstance(obj[key], bool):
            raise ConfigError(f"{where}{key} must be a boolean")
    return NetworkConfig(
        name=name,
        cni_version=version,
        plugins=parsed,
        disable_check=bool(obj.get("disableCheck", False)),
        disable_gc=bool(obj.get("disableGC", False)),
        source=source,
        raw=raw,
    )


def _pick_version(obj: Mapping[str, Any], where: str) -> str:
    versions = obj.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list):
            raise ConfigError(f"{where}cniVersions must be a list")
        best = highest_supported(versions)
        if best is None:
            raise ConfigError(f"{where}none of cniVersions {versions} is supported")
        return best
    version = obj.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise ConfigError(f"{where}missing cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise ConfigError(f"{where}unsupported cniVersion {version!r}")
    return version


def _parse_plugin(obj: Any, network: str, where: str) -> PluginConfig:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}network {network!r}: a plugin must be a JSON object")
    ptype = obj.get("type")
    if not isinstance(ptype, str) or not ptype or "/" in ptype or ptype in {".", ".."}:
        raise ConfigError(f"{where}network {network!r}: invalid plugin type {ptype!r}")
    caps = obj.get("capabilities", {})
    if not isinstance(caps, dict) or not all(isinstance(v, bool) for v in caps.values()):
        raise ConfigError(f"{where}plugin {ptype!r}: capabilities must map names to booleans")
    return PluginConfig(
        type=ptype, capabilities=frozenset(k for k, v in caps.items() if v), raw=obj
    )


def load_network_config(path: str | os.PathLike[str]) -> NetworkConfig:
    """Read and parse one configuration file."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err}") from err
    return parse_network_config(data, source=source)


def load_config_dir(directory: str | os.PathLike[str]) -> ConfigDirContents:
    """Load every configuration file in ``directory`` (sorted by name; dot-files skipped).

    Files that fail to parse are reported in ``errors``, not raised; a network name that
    appears twice keeps its first file.
    """
    base = Path(directory)
    try:
        entries = sorted(p.name for p in base.iterdir())
    except FileNotFoundError:
        return ConfigDirContents(networks=(), errors=())
    except OSError as err:
        return ConfigDirContents(networks=(), errors=((base, f"cannot list: {err}"),))
    networks: list[NetworkConfig] = []
    errors: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.startswith(".") or not entry.endswith(CONFIG_EXTENSIONS):
            continue
        path = base / entry
        if not path.is_file():
            continue
        try:
            network = load_network_config(path)
        except ConfigError as err:
            log.warning("event=cni_config_invalid path=%s error=%s", path, err)
            errors.append((path, str(err)))
            continue
        if network.name in seen:
            errors.append((path, f"network {network.name!r} already defined by an earlier file"))
            continue
        seen.add(network.name)
        networks.append(network)
    return ConfigDirContents(networks=tuple(networks), errors=tuple(errors))
