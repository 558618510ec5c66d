"""Records to CRI messages: the one set of converters every RPC mixin uses.

List items, statuses and event payloads of the same pod or container must describe it
the same way, whichever RPC returns them; so they are all built here, from the records
alone (no runtime queries).
"""

from __future__ import annotations

from crid._cri.v1 import api_pb2
from crid.state import Container, ContainerState, Sandbox, SandboxState

__all__ = [
    "CONTAINER_STATES",
    "CONTAINER_STATES_BACK",
    "SANDBOX_STATES",
    "SANDBOX_STATES_BACK",
    "container_config",
    "container_item",
    "container_metadata",
    "container_status",
    "namespace_options",
    "pod_metadata",
    "sandbox_item",
    "sandbox_status",
]

SANDBOX_STATES = {
    SandboxState.READY: api_pb2.SANDBOX_READY,
    SandboxState.NOTREADY: api_pb2.SANDBOX_NOTREADY,
}
SANDBOX_STATES_BACK = {v: k for k, v in SANDBOX_STATES.items()}
CONTAINER_STATES = {
    ContainerState.CREATED: api_pb2.CONTAINER_CREATED,
    ContainerState.RUNNING: api_pb2.CONTAINER_RUNNING,
    ContainerState.EXITED: api_pb2.CONTAINER_EXITED,
    ContainerState.UNKNOWN: api_pb2.CONTAINER_UNKNOWN,
}
CONTAINER_STATES_BACK = {v: k for k, v in CONTAINER_STATES.items()}


def pod_metadata(sandbox: Sandbox) -> api_pb2.PodSandboxMetadata:
    m = sandbox.meta
    return api_pb2.PodSandboxMetadata(
        name=m.name, uid=m.uid, namespace=m.namespace, attempt=m.attempt
    )


def namespace_options(sandbox: Sandbox) -> api_pb2.NamespaceOption:
    """POD for a pinned namespace, NODE for the host's.

    PID: POD when the pod pinned one, NODE when it asked for the host's, else CONTAINER.
    """
    config = api_pb2.PodSandboxConfig()
    config.ParseFromString(sandbox.config)
    requested = config.linux.security_context.namespace_options.pid
    ns = sandbox.namespaces
    if "pid" in ns:
        pid = api_pb2.POD
    elif requested == api_pb2.NODE:
        pid = api_pb2.NODE
    else:
        pid = api_pb2.CONTAINER
    return api_pb2.NamespaceOption(
        network=api_pb2.POD if "network" in ns else api_pb2.NODE,
        ipc=api_pb2.POD if "ipc" in ns else api_pb2.NODE,
        pid=pid,
    )


def sandbox_item(s: Sandbox) -> api_pb2.PodSandbox:
    """The ListPodSandbox (and StreamPodSandboxes) item of a record."""
    return api_pb2.PodSandbox(
        id=s.id,
        metadata=pod_metadata(s),
        state=SANDBOX_STATES[s.state],
        created_at=s.created_at,
        labels=s.labels,
        annotations=s.annotations,
        runtime_handler=s.runtime_handler,
    )


def sandbox_status(s: Sandbox) -> api_pb2.PodSandboxStatus:
    """The PodSandboxStatus of a record (also the pod status in container events)."""
    ips = list(s.ips)
    return api_pb2.PodSandboxStatus(
        id=s.id,
        metadata=pod_metadata(s),
        state=SANDBOX_STATES[s.state],
        created_at=s.created_at,
        network=api_pb2.PodSandboxNetworkStatus(
            ip=ips[0] if ips else "",
            additional_ips=[api_pb2.PodIP(ip=ip) for ip in ips[1:]],
        ),
        linux=api_pb2.LinuxPodSandboxStatus(
            namespaces=api_pb2.Namespace(options=namespace_options(s))
        ),
        labels=s.labels,
        annotations=s.annotations,
        runtime_handler=s.runtime_handler,
    )


def container_metadata(c: Container) -> api_pb2.ContainerMetadata:
    return api_pb2.ContainerMetadata(name=c.meta.name, attempt=c.meta.attempt)


def container_config(c: Container) -> api_pb2.ContainerConfig:
    """The CRI ContainerConfig the container was created from."""
    config = api_pb2.ContainerConfig()
    config.ParseFromString(c.config)
    return config


def container_item(c: Container) -> api_pb2.Container:
    """The ListContainers (and StreamContainers) item of a record."""
    return api_pb2.Container(
        id=c.id,
        pod_sandbox_id=c.sandbox_id,
        metadata=container_metadata(c),
        image=api_pb2.ImageSpec(image=c.image),
        image_ref=c.image_ref,
        image_id=c.image_id,
        state=CONTAINER_STATES[c.state],
        created_at=c.created_at,
        labels=c.labels,
        annotations=c.annotations,
    )


def container_status(c: Container) -> api_pb2.ContainerStatus:
    """The ContainerStatus of a record (also the statuses in container events)."""
    config = container_config(c)
    return api_pb2.ContainerStatus(
        id=c.id,
        metadata=container_metadata(c),
        state=CONTAINER_STATES[c.state],
        created_at=c.created_at,
        started_at=c.started_at,
        finished_at=c.finished_at,
        exit_code=c.exit_code,
        image=api_pb2.ImageSpec(image=c.image, annotations=config.image.annotations),
        image_ref=c.image_ref,
        image_id=c.image_id,
        reason=c.reason,
        message=c.message,
        labels=c.labels,
        annotations=c.annotations,
        mounts=config.mounts,
        log_path=c.log_path,
        resources=api_pb2.ContainerResources(linux=config.linux.resources)
        if config.linux.HasField("resources")
        else None,
        user=_user(c),
    )


def _user(c: Container) -> api_pb2.ContainerUser | None:
    """The identity the process was started with (what the kubelet shows as status.user)."""
    if c.user is None:
        return None
    return api_pb2.ContainerUser(
        linux=api_pb2.LinuxContainerUser(
            uid=c.user.uid, gid=c.user.gid, supplemental_groups=c.user.supplemental_groups
        )
    )
