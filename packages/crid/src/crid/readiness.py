"""The runtime's conditions as CRI ``Status`` reports them: checked, never assumed.

RuntimeReady holds only when the default handler's OCI runtime binary and conmon are
both found; NetworkReady only when ocinet's watched CNI configuration directory holds a
usable network (the one named by ``cni_default_network`` when set, its plugins found).
"""

from __future__ import annotations

from dataclasses import dataclass

from crid.config import Config
from crid.oci import conmon_binary, runtime_binary
from ocinet import Readiness

__all__ = ["RUNTIME_READY", "Condition", "network_condition", "runtime_condition"]

RUNTIME_READY = "RuntimeReady"
NETWORK_READY = "NetworkReady"


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


def network_condition(readiness: Readiness) -> Condition:
    """Whether pods can get a network, from ocinet's watch of the CNI configuration."""
    if readiness.ready:
        return Condition(type=NETWORK_READY, status=True)
    return Condition(
        type=NETWORK_READY,
        status=False,
        reason="NetworkPluginNotReady",
        message=f"CNI network not ready: {readiness.reason}",
    )
