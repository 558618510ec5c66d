"""What a runtime tells plugins about one attachment: container, netns, ifname, args, caps."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ocinet.errors import ConfigError

__all__ = ["Bandwidth", "PodRef", "PortMapping", "RuntimeConf"]

_CONTAINER_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_IFNAME_FORBIDDEN = set("/: \t\n")


@dataclass(frozen=True, kw_only=True)
class PodRef:
    """The Kubernetes identity of a pod, passed to plugins as ``K8S_*`` CNI_ARGS."""

    namespace: str
    name: str
    uid: str = ""
    infra_container_id: str = ""


@dataclass(frozen=True, kw_only=True)
class PortMapping:
    """A hostPort mapping (the ``portMappings`` capability)."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def to_json(self) -> dict[str, Any]:
        """The capability argument's JSON shape."""
        out: dict[str, Any] = {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol.lower(),
        }
        if self.host_ip:
            out["hostIP"] = self.host_ip
        return out


@dataclass(frozen=True, kw_only=True)
class Bandwidth:
    """Traffic shaping (the ``bandwidth`` capability): rates in bit/s, bursts in bits."""

    ingress_rate: int = 0
    ingress_burst: int = 0
    egress_rate: int = 0
    egress_burst: int = 0

    def to_json(self) -> dict[str, Any]:
        """The capability argument's JSON shape."""
        return {
            "ingressRate": self.ingress_rate,
            "ingressBurst": self.ingress_burst,
            "egressRate": self.egress_rate,
            "egressBurst": self.egress_burst,
        }


@dataclass(frozen=True, kw_only=True)
class RuntimeConf:
    """One attachment: a container's interface ``ifname`` in the netns at ``netns``.

    ``args`` become ``CNI_ARGS`` (``K=V;K=V``); ``capability_args`` are offered to plugins
    as ``runtimeConfig``, each only to plugins that declare that capability.
    """

    container_id: str
    netns: str = ""
    ifname: str = "eth0"
    args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not _CONTAINER_ID_RE.match(self.container_id):
            raise ConfigError(f"invalid container id {self.container_id!r}")
        if (
            not self.ifname
            or len(self.ifname) > 15
            or self.ifname in {".", ".."}
            or _IFNAME_FORBIDDEN & set(self.ifname)
        ):
            raise ConfigError(f"invalid interface name {self.ifname!r}")
        for key, value in self.args:
            if not key or "=" in key or ";" in key or ";" in value:
                raise ConfigError(f"invalid CNI_ARGS entry {key!r}={value!r}")

    @classmethod
    def for_pod(
        cls,
        *,
        container_id: str,
        netns: str,
        pod: PodRef | None = None,
        ifname: str = "eth0",
        port_mappings: Sequence[PortMapping] = (),
        bandwidth: Bandwidth | None = None,
        dns: Mapping[str, Any] | None = None,
        ips: Sequence[str] = (),
        mac: str = "",
        cgroup_path: str = "",
        extra_args: Iterable[tuple[str, str]] = (),
        extra_capabilities: Mapping[str, Any] | None = None,
    ) -> RuntimeConf:
        """Build the attachment of a pod the way CRI runtimes do.

        ``IgnoreUnknown=1`` comes first so plugins that parse CNI_ARGS strictly accept the
        ``K8S_*`` keys they do not know.
        """
        args: list[tuple[str, str]] = [("IgnoreUnknown", "1")]
        if pod is not None:
            args += [
                ("K8S_POD_NAMESPACE", pod.namespace),
                ("K8S_POD_NAME", pod.name),
                ("K8S_POD_INFRA_CONTAINER_ID", pod.infra_container_id or container_id),
            ]
            if pod.uid:
                args.append(("K8S_POD_UID", pod.uid))
        args += list(extra_args)
        caps: dict[str, Any] = {}
        if port_mappings:
            caps["portMappings"] = [p.to_json() for p in port_mappings]
        if bandwidth is not None:
            caps["bandwidth"] = bandwidth.to_json()
        if dns:
            caps["dns"] = dict(dns)
        if ips:
            caps["ips"] = list(ips)
        if mac:
            caps["mac"] = mac
        if cgroup_path:
            caps["cgroupPath"] = cgroup_path
        caps.update(extra_capabilities or {})
        return cls(
            container_id=container_id,
            netns=netns,
            ifname=ifname,
            args=tuple(args),
            capability_args=caps,
        )

    def cni_args(self) -> str:
        """The ``CNI_ARGS`` value."""
        return ";".join(f"{k}={v}" for k, v in self.args)
