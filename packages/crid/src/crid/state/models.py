"""What crid remembers about pods and containers: frozen records, replaced on change.

The CRI configs they were created from are kept as serialized protobuf bytes: crid
reports fields from them in Status calls, and they never leave crid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Container",
    "ContainerMeta",
    "ContainerState",
    "ContainerUser",
    "PodMeta",
    "Sandbox",
    "SandboxState",
]


class SandboxState(StrEnum):
    """A pod sandbox's state as the CRI knows it."""

    READY = "ready"
    NOTREADY = "notready"


class ContainerState(StrEnum):
    """A container's state as the CRI knows it."""

    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class PodMeta:
    """The pod identity the kubelet gives (CRI PodSandboxMetadata)."""

    name: str
    uid: str
    namespace: str
    attempt: int = 0


@dataclass(frozen=True, kw_only=True)
class ContainerMeta:
    """The container identity the kubelet gives (CRI ContainerMetadata)."""

    name: str
    attempt: int = 0


@dataclass(frozen=True, kw_only=True)
class ContainerUser:
    """The identity a container's process starts with: its config's ``process.user``.

    ``supplemental_groups`` are the config's ``additionalGids`` (the primary gid first).
    """

    uid: int
    gid: int
    supplemental_groups: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """One pod sandbox.

    ``namespaces`` maps ``network``, ``ipc``, ``uts`` (and ``pid`` when the pod shares
    one) to pinned namespace paths; a missing key means the host's namespace (NODE).
    ``cgroup_parent`` is the pod cgroup the kubelet named; the pod's files (hostname,
    hosts, resolv.conf, shm) live in ``Layout.sandbox_dir(id)``. ``config`` is the
    serialized CRI PodSandboxConfig. ``network_detached`` is set once StopPodSandbox has
    DEL'd the pod from its network, so RemovePodSandbox does not run the plugins again
    (records older than the field read False: Remove DELs, as before).
    """

    id: str
    name: str
    meta: PodMeta
    state: SandboxState
    created_at: int
    runtime_handler: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    hostname: str = ""
    log_directory: str = ""
    cgroup_parent: str = ""
    network: str = ""
    config: bytes = b""
    network_detached: bool = False
    #: The infra container's pid and that process's start time, for signalling it without
    #: the runtime (:mod:`crid.oci.init_signal`; 0: no infra container, a record older than
    #: these fields, or a start time that could not be read: the runtime signals it).
    infra_pid: int = 0
    infra_started: int = 0


@dataclass(frozen=True, kw_only=True)
class Container:
    """One container of a sandbox.

    Its root filesystem is the ocistore container of the same id; its bundle is
    ``Layout.bundle(id)``; ``cgroup_path`` is the ``linux.cgroupsPath`` it runs in;
    ``config`` is the serialized CRI ContainerConfig; ``user`` the identity its process
    was given (None for records older than that field). Times are nanoseconds since the
    epoch (0: not yet).
    """

    id: str
    name: str
    sandbox_id: str
    meta: ContainerMeta
    state: ContainerState
    created_at: int
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image: str = ""
    image_ref: str = ""
    image_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    pid: int = 0
    conmon_pid: int = 0
    bundle: str = ""
    runtime_handler: str = ""
    cgroup_path: str = ""
    config: bytes = b""
    user: ContainerUser | None = None
    #: The signal StopContainer sends first (0: records older than this field, whose
    #: bundle holds it in a ``stop-signal`` file).
    stop_signal: int = 0
    #: The start time (clock ticks after boot) of the init process ``pid``, recorded at
    #: create so that crid can signal it without the runtime (:mod:`crid.oci.init_signal`);
    #: 0: the runtime signals it (records older than this field).
    init_started: int = 0
    #: Whether the container joined a PID namespace or stayed in the node's (its SIGKILL
    #: then goes through the runtime, which may kill its other processes too).
    shares_pid_namespace: bool = False
