"""GetContainerEvents and the streaming list RPCs (StreamPodSandboxes, StreamContainers).

GetContainerEvents turns every :class:`crid.events.Event` into a ContainerEventResponse
with the pod's status and its containers' statuses as the registry has them at that
moment (a deleted record is simply absent). Each call is its own subscription; the stream
ends when crid shuts down or when the subscriber falls too far behind.

Pods and containers are described by the same converters as the List and Status RPCs
(``services/_messages.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from crid._cri.v1 import api_pb2
from crid.events import Event, EventKind
from crid.rpc_errors import translate_errors
from crid.services._base import RpcContext, ServiceBase
from crid.services._messages import (
    CONTAINER_STATES_BACK,
    SANDBOX_STATES_BACK,
    container_status,
    sandbox_status,
)
from crid.state import Container, Sandbox
from crid.stats import select_containers, select_sandboxes

__all__ = ["EventRPCs", "event_message"]

_T = TypeVar("_T")

STREAM_CHUNK = 500

_EVENT_TYPES = {
    EventKind.CONTAINER_CREATED: api_pb2.CONTAINER_CREATED_EVENT,
    EventKind.CONTAINER_STARTED: api_pb2.CONTAINER_STARTED_EVENT,
    EventKind.CONTAINER_STOPPED: api_pb2.CONTAINER_STOPPED_EVENT,
    EventKind.CONTAINER_DELETED: api_pb2.CONTAINER_DELETED_EVENT,
}


def event_message(
    event: Event, sandbox: Sandbox | None, containers: Sequence[Container]
) -> api_pb2.ContainerEventResponse:
    """The CRI form of ``event`` with the pod's current records."""
    return api_pb2.ContainerEventResponse(
        container_id=event.container_id,
        container_event_type=_EVENT_TYPES[event.kind],
        created_at=event.at_ns,
        pod_sandbox_status=sandbox_status(sandbox) if sandbox is not None else None,
        containers_statuses=[container_status(c) for c in containers],
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
            states=[SANDBOX_STATES_BACK[f.state.state]] if has_state else None,
            labels=dict(f.label_selector),
        )
        for chunk in _chunks(found):
            items = self.sandbox_items.messages(chunk, complete=False)
            yield api_pb2.StreamPodSandboxesResponse(pod_sandboxes=items)

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
            states=[CONTAINER_STATES_BACK[f.state.state]] if has_state else None,
            labels=dict(f.label_selector),
        )
        for chunk in _chunks(found):
            items = self.container_items.messages(chunk, complete=False)
            yield api_pb2.StreamContainersResponse(containers=items)
