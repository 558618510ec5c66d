"""What RunPodSandbox asks for, in crid's own terms (``crid.translate`` fills it in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crid.sandbox.files import DNS
from crid.state import PodMeta
from ocinet import PortMapping
from ocispec.generate import NamespaceMode

__all__ = ["PodRequest"]


@dataclass(frozen=True, kw_only=True)
class PodRequest:
    """A validated pod sandbox config.

    ``network``/``ipc``/``pid`` are the pod's namespace modes (POD: shared by its
    containers, NODE: the host's); the UTS namespace follows the network's, as in
    Kubernetes. ``config`` is the serialized CRI PodSandboxConfig, kept in the record.
    """

    meta: PodMeta
    hostname: str = ""
    log_directory: str = ""
    dns: DNS | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    cgroup_parent: str = ""
    network: NamespaceMode = NamespaceMode.POD
    ipc: NamespaceMode = NamespaceMode.POD
    pid: NamespaceMode = NamespaceMode.CONTAINER
    sysctls: Mapping[str, str] = field(default_factory=dict)
    runtime_handler: str = ""
    config: bytes = b""

    @property
    def name(self) -> str:
        """The reserved name: ``k8s_POD_<name>_<namespace>_<uid>_<attempt>``."""
        m = self.meta
        return f"k8s_POD_{m.name}_{m.namespace}_{m.uid}_{m.attempt}"
