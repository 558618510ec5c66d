"""Namespace modes: private to the container, shared with the pod, the node's, or a target's.

Every joined namespace is expressed as a path (``linux.namespaces[].path``): a pod's
namespaces are files pinned by the runtime (``/run/crid/ns/net/<pod>``), a target
container's PID namespace is ``/proc/<pid>/ns/pid``. The node's namespace is expressed by
leaving the namespace out, so the container stays in the runtime's (the host's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ocispec.errors import InvalidArgumentError
from ocispec.runtime import IDMapping, Namespace, NamespaceType

__all__ = [
    "NamespaceMode",
    "NamespaceOption",
    "NamespaceOptions",
    "UserNamespace",
    "build_namespaces",
]


class NamespaceMode(StrEnum):
    """Kubernetes' namespace modes."""

    #: Shared with the pod (joined by path).
    POD = "pod"
    #: A new namespace for this container alone.
    CONTAINER = "container"
    #: The node's (host) namespace.
    NODE = "node"
    #: Another container's namespace (PID only in Kubernetes), joined by path.
    TARGET = "target"


@dataclass(frozen=True, kw_only=True)
class NamespaceOption:
    """How one namespace is set up; ``path`` for POD and TARGET."""

    mode: NamespaceMode = NamespaceMode.CONTAINER
    path: str = ""

    @classmethod
    def private(cls) -> NamespaceOption:
        """A new namespace of the container's own."""
        return cls(mode=NamespaceMode.CONTAINER)

    @classmethod
    def node(cls) -> NamespaceOption:
        """The host's namespace."""
        return cls(mode=NamespaceMode.NODE)

    @classmethod
    def pod(cls, path: str) -> NamespaceOption:
        """The pod's namespace, pinned at ``path``."""
        return cls(mode=NamespaceMode.POD, path=path)

    @classmethod
    def target(cls, pid_or_path: int | str, kind: str = "pid") -> NamespaceOption:
        """Another container's namespace: its init pid, or a path to the namespace."""
        path = f"/proc/{pid_or_path}/ns/{kind}" if isinstance(pid_or_path, int) else pid_or_path
        return cls(mode=NamespaceMode.TARGET, path=path)


@dataclass(frozen=True, kw_only=True)
class UserNamespace:
    """A user namespace: new with these id mappings, or joined at ``path`` (mappings then
    describe the joined namespace, for the runtime's bookkeeping)."""

    uid_mappings: Sequence[IDMapping] = ()
    gid_mappings: Sequence[IDMapping] = ()
    path: str = ""

    @classmethod
    def mapped(cls, host_id: int, size: int = 65536, container_id: int = 0) -> UserNamespace:
        """One contiguous range for uids and gids: ``container_id..+size`` -> ``host_id..``."""
        m = IDMapping(container_id=container_id, host_id=host_id, size=size)
        return cls(uid_mappings=(m,), gid_mappings=(m,))


@dataclass(frozen=True, kw_only=True)
class NamespaceOptions:
    """The container's namespaces. The mount namespace is always private."""

    pid: NamespaceOption = field(default_factory=NamespaceOption)
    network: NamespaceOption = field(default_factory=NamespaceOption)
    ipc: NamespaceOption = field(default_factory=NamespaceOption)
    uts: NamespaceOption = field(default_factory=NamespaceOption)
    cgroup: NamespaceOption = field(default_factory=NamespaceOption)
    #: None: the host's user namespace.
    user: UserNamespace | None = None

    def private(self, kind: str) -> bool:
        """Whether the container gets a namespace of ``kind`` of its own or its pod's
        (that is: not the node's)."""
        opt: NamespaceOption = getattr(self, kind)
        return opt.mode is not NamespaceMode.NODE


def _entry(kind: NamespaceType, opt: NamespaceOption) -> Namespace | None:
    if opt.mode is NamespaceMode.NODE:
        return None
    if opt.mode is NamespaceMode.CONTAINER:
        if opt.path:
            raise InvalidArgumentError(f"a private {kind} namespace takes no path")
        return Namespace(type=kind)
    if not opt.path.startswith("/"):
        raise InvalidArgumentError(
            f"{opt.mode} {kind} namespace needs an absolute path, got {opt.path!r}"
        )
    if opt.mode is NamespaceMode.TARGET and kind is not NamespaceType.PID:
        raise InvalidArgumentError(f"target mode is only for the PID namespace, not {kind}")
    return Namespace(type=kind, path=opt.path)


def build_namespaces(opts: NamespaceOptions) -> list[Namespace]:
    """``linux.namespaces`` for these options, in the order runc joins them."""
    out: list[Namespace] = []
    for kind, opt in (
        (NamespaceType.PID, opts.pid),
        (NamespaceType.NETWORK, opts.network),
        (NamespaceType.IPC, opts.ipc),
        (NamespaceType.UTS, opts.uts),
    ):
        ns = _entry(kind, opt)
        if ns is not None:
            out.append(ns)
    out.append(Namespace(type=NamespaceType.MOUNT))
    cg = _entry(NamespaceType.CGROUP, opts.cgroup)
    if cg is not None:
        out.append(cg)
    if opts.user is not None:
        if opts.user.path:
            if not opts.user.path.startswith("/"):
                raise InvalidArgumentError("a user namespace path must be absolute")
            out.append(Namespace(type=NamespaceType.USER, path=opts.user.path))
        else:
            if not opts.user.uid_mappings or not opts.user.gid_mappings:
                raise InvalidArgumentError("a new user namespace needs uid and gid mappings")
            out.append(Namespace(type=NamespaceType.USER))
    return out
