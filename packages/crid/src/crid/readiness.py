"""The runtime's conditions as CRI ``Status`` reports them: checked, never assumed.

RuntimeReady holds only when the default handler's OCI runtime binary and conmon are
both found; NetworkReady only when the CNI configuration directory holds a network
configuration (the one named by ``cni_default_network`` when that is set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from crid.config import Config
from crid.oci import conmon_binary, runtime_binary

__all__ = ["Condition", "network_condition", "runtime_condition"]

RUNTIME_READY = "RuntimeReady"
NETWORK_READY = "NetworkReady"
_CNI_SUFFIXES = (".conf", ".conflist", ".json")


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One runtime condition: its type, whether it holds, and why not."""

    type: str
    status: bool
    reason: str = ""
    message: str = ""


def runtime_condition(config: Config) -> Condition:
    """Whether containers can run: the OCI runtime and conmon are installed."""
    runtime = config.crid.runtime
    name = runtime.default_runtime
    if runtime_binary(name, runtime.runtimes[name]) is None:
        where = runtime.runtimes[name].runtime_path or f"'{name}' in PATH"
        return Condition(
            type=RUNTIME_READY,
            status=False,
            reason="RuntimeBinaryNotFound",
            message=f"OCI runtime of handler {name!r} not found ({where})",
        )
    if conmon_binary(runtime.conmon) is None:
        where = runtime.conmon or "'conmon' in PATH"
        return Condition(
            type=RUNTIME_READY,
            status=False,
            reason="ConmonNotFound",
            message=f"conmon not found ({where})",
        )
    return Condition(type=RUNTIME_READY, status=True)


def _network_names(directory: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in _CNI_SUFFIXES or not path.is_file():
            continue
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and isinstance(document.get("name"), str):
            found.append((path, document["name"]))
    return found


def network_condition(config: Config) -> Condition:
    """Whether pods can get a network: a usable CNI configuration is present."""
    network = config.crid.network
    directory = Path(network.network_dir)
    if not directory.is_dir():
        return Condition(
            type=NETWORK_READY,
            status=False,
            reason="NetworkPluginNotReady",
            message=f"CNI configuration directory {directory} does not exist",
        )
    networks = _network_names(directory)
    wanted = network.cni_default_network
    if wanted and all(name != wanted for _, name in networks):
        return Condition(
            type=NETWORK_READY,
            status=False,
            reason="NetworkPluginNotReady",
            message=f"no CNI network named {wanted!r} in {directory}",
        )
    if not networks:
        return Condition(
            type=NETWORK_READY,
            status=False,
            reason="NetworkPluginNotReady",
            message=f"no CNI network configuration in {directory}",
        )
    return Condition(type=NETWORK_READY, status=True)
