"""GetContainerEvents and the streaming list RPCs (StreamPodSandboxes, StreamContainers).

GetContainerEvents turns every :class:`crid.events.Event` into a ContainerEventResponse
with the pod's status and its containers' statuses as the registry has them at that
moment (a deleted record is simply absent). Each call is its own subscription; the stream
ends when crid shuts down or when the subscriber falls too far behind.

The record-to-CRI converters here are small and record-only (no runtime queries); the
lifecycle RPCs have their own, richer ones for PodSandboxStatus/ContainerStatus.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from crid._cri.v1 import api_pb2
from crid.events import Event, EventKind
from crid.rpc_errors import translate_errors
from crid.services._base import RpcContext, ServiceBase
from crid.state import Container, ContainerState, Sandbox, SandboxState
from crid.stats import select_containers, select_sandboxes

__all__ = [
    "EventRPCs",
    "container_message",
    "container_status_message",
    "event_message",
    "sandbox_message",
    "sandbox_status_message",
]

_T = TypeVar("_T")

STREAM_CHUNK = 500

_EVENT_TYPES = {
    EventKind.CONTAINER_CREATED: api_pb2.CONTAINER_CREATED_EVENT,
    EventKind.CONTAINER_STARTED: api_pb2.CONTAINER_STARTED_EVENT,
    EventKind.CONTAINER_STOPPED: api_pb2.CONTAINER_STOPPED_EVENT,
    EventKind.CONTAINER_DELETED: api_pb2.CONTAINER_DELETED_EVENT,
}
_SANDBOX_STATES = {
    SandboxState.READY: api_pb2.SANDBOX_READY,
    SandboxState.NOTREADY: api_pb2.SANDBOX_NOTREADY,
}
_SANDBOX_STATES_BACK = {v: k for k, v in _SANDBOX_STATES.items()}
_CONTAINER_STATES = {
    ContainerState.CREATED: api_pb2.CONTAINER_CREATED,
    ContainerState.RUNNING: api_pb2.CONTAINER_RUNNING,
    ContainerState.EXITED: api_pb2.CONTAINER_EXITED,
    ContainerState.UNKNOWN: api_pb2.CONTAINER_UNKNOWN,
}
_CONTAINER_STATES_BACK = {v: k for k, v in _CONTAINER_STATES.items()}


def _pod_metadata(sandbox: Sandbox) -> api_pb2.PodSandboxMetadata:
    return api_pb2.PodSandboxMetadata(
        name=sandbox.meta.name,
        uid=sandbox.meta.uid,
        namespace=sandbox.meta.namespace,
        attempt=sandbox.meta.attempt,
    )


def _image(container: Container) -> api_pb2.ImageSpec:
    return api_pb2.ImageSpec(
        image=container.image,
        user_specified_image=container.image,
        runtime_handler=container.runtime_handler,
        image_ref=container.image_ref,
    )


def sandbox_message(sandbox: Sandbox) -> api_pb2.PodSandbox:
    """The ListPodSandbox item of a record."""
    return api_pb2.PodSandbox(
        id=sandbox.id,
        metadata=_pod_metadata(sandbox),
        state=_SANDBOX_STATES[sandbox.state],
        created_at=sandbox.created_at,
        labels=sandbox.labels,
        annotations=sandbox.annotations,
        runtime_handler=sandbox.runtime_handler,
    )


def container_message(container: Container) -> api_pb2.Container:
    """The ListContainers item of a record."""
    return api_pb2.Container(
        id=container.id,
        pod_sandbox_id=container.sandbox_id,
        metadata=api_pb2.ContainerMetadata(
            name=container.meta.name, attempt=container.meta.attempt
        ),
        image=_image(container),
        image_ref=container.image_ref,
        image_id=container.image_id,
        state=_CONTAINER_STATES[container.state],
        created_at=container.created_at,
        labels=container.labels,
        annotations=container.annotations,
    )


def _namespace_options(sandbox: Sandbox) -> api_pb2.NamespaceOption:
    """POD for a pinned namespace, NODE for the host's (a missing key)."""

    def mode(key: str) -> api_pb2.NamespaceMode:
        return api_pb2.POD if key in sandbox.namespaces else api_pb2.NODE

    return api_pb2.NamespaceOption(
        network=mode("network"),
        ipc=mode("ipc"),
        pid=api_pb2.POD if "pid" in sandbox.namespaces else api_pb2.CONTAINER,
    )


def sandbox_status_message(sandbox: Sandbox) -> api_pb2.PodSandboxStatus:
    """A PodSandboxStatus from the record alone."""
    ips = list(sandbox.ips)
    return api_pb2.PodSandboxStatus(
        id=sandbox.id,
        metadata=_pod_metadata(sandbox),
        state=_SANDBOX_STATES[sandbox.state],
        created_at=sandbox.created_at,
        network=api_pb2.PodSandboxNetworkStatus(
            ip=ips[0] if ips else "",
            additional_ips=[api_pb2.PodIP(ip=ip) for ip in ips[1:]],
        ),
        linux=api_pb2.LinuxPodSandboxStatus(
            namespaces=api_pb2.Namespace(options=_namespace_options(sandbox))
        ),
        labels=sandbox.labels,
        annotations=sandbox.annotations,
        runtime_handler=sandbox.runtime_handler,
    )


def container_status_message(container: Container) -> api_pb2.ContainerStatus:
    """A ContainerStatus from the record alone."""
    return api_pb2.ContainerStatus(
        id=container.id,
        metadata=api_pb2.ContainerMetadata(
            name=container.meta.name, attempt=container.meta.attempt
        ),
        state=_CONTAINER_STATES[container.state],
        created_at=container.created_at,
        started_at=container.started_at,
        finished_at=container.finished_at,
        exit_code=container.exit_code,
        image=_image(container),
        image_ref=container.image_ref,
        image_id=container.image_id,
        reason=container.reason,
        message=container.message,
        labels=container.labels,
        annotations=container.annotations,
        log_path=container.log_path,
    )


def event_message(
    event: Event, sandbox: Sandbox | None, containers: Sequence[Container]
) -> api_pb2.ContainerEventResponse:
    """The CRI form of ``event`` with the pod's current records."""
    return api_pb2.ContainerEventResponse(
        container_id=event.container_id,
        container_event_type=_EVENT_TYPES[event.kind],
        created_at=event.at_ns,
        pod_sandbox_status=sandbox_status_message(sandbox) if sandbox is not None else None,
        containers_statuses=[container_status_message(c) for c in containers],
    )


def _chunks(items: Sequence[_T]) -> list[Sequence[_T]]:
    return [items[i : i + STREAM_CHUNK] for i in range(0, len(items), STREAM_CHUNK)]


class EventRPCs(ServiceBase):
    """Lifecycle events and the streaming list variants."""

    @translate_errors
    async def GetContainerEvents(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.GetEventsRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.ContainerEventResponse]:
        registry = self.ctx.registry
        async for event in self.ctx.events.subscribe():
            sandbox = registry.find_sandbox(event.sandbox_id) if event.sandbox_id else None
            containers = registry.containers(sandbox.id) if sandbox is not None else []
            yield event_message(event, sandbox, containers)

    @translate_errors
    async def StreamPodSandboxes(  # noqa: N802
        self, request: api_pb2.StreamPodSandboxesRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.StreamPodSandboxesResponse]:
        f = request.filter
        has_state = f.HasField("state")
        found = select_sandboxes(
            self.ctx.registry,
            id_or_prefix=f.id,
            states=[_SANDBOX_STATES_BACK[f.state.state]] if has_state else None,
            labels=dict(f.label_selector),
        )
        for chunk in _chunks(found):
            yield api_pb2.StreamPodSandboxesResponse(
                pod_sandboxes=[sandbox_message(s) for s in chunk]
            )

    @translate_errors
    async def StreamContainers(  # noqa: N802
        self, request: api_pb2.StreamContainersRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.StreamContainersResponse]:
        f = request.filter
        has_state = f.HasField("state")
        found = select_containers(
            self.ctx.registry,
            id_or_prefix=f.id,
            sandbox_id=f.pod_sandbox_id,
            states=[_CONTAINER_STATES_BACK[f.state.state]] if has_state else None,
            labels=dict(f.label_selector),
        )
        for chunk in _chunks(found):
            yield api_pb2.StreamContainersResponse(containers=[container_message(c) for c in chunk])
