"""GetContainerEvents fan-out and shutdown, StreamPodSandboxes and StreamContainers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.context import Context
from crid.events import Event, EventKind
from crid.server import Daemon
from crid.state import Container, ContainerMeta, ContainerState, PodMeta, Sandbox, SandboxState

from ._observe import container, new_id, pod, wait_until

pytestmark = pytest.mark.binaries("runc", "conmon")


@pytest.fixture
async def daemon(config: Config) -> AsyncIterator[Daemon]:
    running = Daemon(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop(grace=0)


def ctx_of(daemon: Daemon) -> Context:
    assert daemon.context is not None
    return daemon.context


def sandbox_record(i: int, *, state: SandboxState = SandboxState.READY, **labels: str) -> Sandbox:
    return Sandbox(
        id=new_id(),
        name=f"k8s_pod{i}",
        meta=PodMeta(name=f"pod{i}", uid=f"uid{i}", namespace="ns", attempt=1),
        state=state,
        created_at=1000 + i,
        labels=labels,
        namespaces={"network": "/run/netns/x", "ipc": "/run/ipc/x", "uts": "/run/uts/x"},
        ips=("10.88.0.5", "fd00::5"),
        runtime_handler="runc",
    )


def container_record(
    i: int, sandbox: Sandbox, *, state: ContainerState = ContainerState.RUNNING, **labels: str
) -> Container:
    return Container(
        id=new_id(),
        name=f"k8s_c{i}_{sandbox.name}",
        sandbox_id=sandbox.id,
        meta=ContainerMeta(name=f"c{i}", attempt=2),
        state=state,
        created_at=2000 + i,
        started_at=3000 + i,
        image="busybox:latest",
        image_ref="sha256:" + "ab" * 32,
        image_id="sha256:" + "ab" * 32,
        labels=labels,
        log_path=f"/var/log/c{i}.log",
    )


async def collect(
    stub: api_pb2_grpc.RuntimeServiceStub, n: int, out: list[api_pb2.ContainerEventResponse]
) -> None:
    async for message in stub.GetContainerEvents(api_pb2.GetEventsRequest()):
        out.append(message)
        if len(out) == n:
            return


async def test_every_subscriber_gets_every_event_with_pod_and_container_statuses(
    daemon: Daemon,
) -> None:
    ctx = ctx_of(daemon)
    sandbox = sandbox_record(0)
    await ctx.registry.save_sandbox(sandbox)
    first = container_record(0, sandbox)
    second = container_record(1, sandbox, state=ContainerState.EXITED)
    await ctx.registry.save_container(first)
    await ctx.registry.save_container(second)
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        stub = api_pb2_grpc.RuntimeServiceStub(ch)
        received: list[list[api_pb2.ContainerEventResponse]] = [[], [], []]
        tasks = [asyncio.create_task(collect(stub, 4, out)) for out in received]
        await wait_until(lambda: ctx.events.subscribers == 3)
        for kind in (EventKind.CONTAINER_CREATED, EventKind.CONTAINER_STARTED):
            ctx.events.publish(Event(kind=kind, container_id=first.id, sandbox_id=sandbox.id))
        ctx.events.publish(
            Event(kind=EventKind.CONTAINER_STOPPED, container_id=second.id, sandbox_id=sandbox.id)
        )
        # Statuses are those of the moment an event is sent: let the three go out before
        # the record goes (a record write need not yield to the event loop).
        await wait_until(lambda: all(len(out) == 3 for out in received))
        await ctx.registry.remove_container(second.id)
        deleted_at = time.time_ns()
        ctx.events.publish(
            Event(kind=EventKind.CONTAINER_DELETED, container_id=second.id, sandbox_id=sandbox.id)
        )
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    for messages in received:
        assert [m.container_event_type for m in messages] == [
            api_pb2.CONTAINER_CREATED_EVENT,
            api_pb2.CONTAINER_STARTED_EVENT,
            api_pb2.CONTAINER_STOPPED_EVENT,
            api_pb2.CONTAINER_DELETED_EVENT,
        ]
        assert [m.container_id for m in messages] == [first.id, first.id, second.id, second.id]
        assert messages[-1].created_at >= deleted_at
        assert messages[0].created_at <= messages[1].created_at <= messages[-1].created_at
        status = messages[0].pod_sandbox_status
        assert status.id == sandbox.id
        assert status.metadata.name == "pod0"
        assert status.metadata.attempt == 1
        assert status.state == api_pb2.SANDBOX_READY
        assert status.network.ip == "10.88.0.5"
        assert [ip.ip for ip in status.network.additional_ips] == ["fd00::5"]
        assert status.linux.namespaces.options.network == api_pb2.POD
        assert status.linux.namespaces.options.pid == api_pb2.CONTAINER
        assert status.runtime_handler == "runc"
        statuses = {s.id: s for s in messages[0].containers_statuses}
        assert set(statuses) == {first.id, second.id}
        assert statuses[first.id].state == api_pb2.CONTAINER_RUNNING
        assert statuses[first.id].started_at == first.started_at
        assert statuses[first.id].image.image == "busybox:latest"
        assert statuses[first.id].log_path == first.log_path
        assert statuses[second.id].state == api_pb2.CONTAINER_EXITED
        # Once deleted, the container's record is gone from the statuses.
        assert [s.id for s in messages[-1].containers_statuses] == [first.id]
    await wait_until(lambda: ctx.events.subscribers == 0)  # closed streams unsubscribe


async def test_event_of_an_unknown_pod_has_no_statuses(daemon: Daemon) -> None:
    ctx = ctx_of(daemon)
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        out: list[api_pb2.ContainerEventResponse] = []
        task = asyncio.create_task(collect(api_pb2_grpc.RuntimeServiceStub(ch), 1, out))
        await wait_until(lambda: ctx.events.subscribers == 1)
        ctx.events.publish(
            Event(kind=EventKind.CONTAINER_DELETED, container_id="x" * 64, sandbox_id="y" * 64)
        )
        await asyncio.wait_for(task, 10)
    assert out[0].container_id == "x" * 64
    assert not out[0].HasField("pod_sandbox_status")
    assert list(out[0].containers_statuses) == []


async def test_streams_end_cleanly_at_shutdown(config: Config) -> None:
    running = Daemon(config)
    await running.start()
    ctx = ctx_of(running)
    ch = grpc.aio.insecure_channel(f"unix://{running.socket_path}")
    try:
        stub = api_pb2_grpc.RuntimeServiceStub(ch)
        out: list[api_pb2.ContainerEventResponse] = []
        task = asyncio.create_task(collect(stub, 1000, out))
        await wait_until(lambda: ctx.events.subscribers == 1)
        started = time.monotonic()
        await running.stop(grace=5.0)
        assert time.monotonic() - started < 2.0  # the open stream does not hold shutdown
        await asyncio.wait_for(task, 5)  # ended with OK: no exception
        assert out == []
    finally:
        await ch.close()


async def test_stream_pod_sandboxes_and_containers_filter_and_chunk(daemon: Daemon) -> None:
    ctx = ctx_of(daemon)
    pods = [sandbox_record(i, app="web" if i % 2 else "db") for i in range(600)]
    pods.append(sandbox_record(600, state=SandboxState.NOTREADY, app="gone"))
    for record in pods:
        await ctx.registry.save_sandbox(record)
    web = pods[1]
    containers = [
        container_record(0, web, tier="a"),
        container_record(1, web, state=ContainerState.EXITED, tier="b"),
        container_record(2, pods[2], tier="a"),
    ]
    for c in containers:
        await ctx.registry.save_container(c)
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        stub = api_pb2_grpc.RuntimeServiceStub(ch)

        async def sandboxes(**kwargs: object) -> list[list[str]]:
            request = api_pb2.StreamPodSandboxesRequest(
                filter=api_pb2.PodSandboxFilter(**kwargs)  # type: ignore[arg-type]
            )
            return [[s.id for s in m.pod_sandboxes] async for m in stub.StreamPodSandboxes(request)]

        everything = await sandboxes()
        assert [len(chunk) for chunk in everything] == [500, 101]  # each item exactly once
        assert sorted(i for chunk in everything for i in chunk) == sorted(p.id for p in pods)
        assert await sandboxes(id=web.id[:12]) == [[web.id]]
        notready = api_pb2.PodSandboxStateValue(state=api_pb2.SANDBOX_NOTREADY)
        assert await sandboxes(state=notready) == [[pods[600].id]]
        webs = await sandboxes(label_selector={"app": "web"})
        assert sum(len(chunk) for chunk in webs) == 300
        assert await sandboxes(label_selector={"app": "none"}) == []  # no items, no message

        async def listed(**kwargs: object) -> list[api_pb2.Container]:
            request = api_pb2.StreamContainersRequest(
                filter=api_pb2.ContainerFilter(**kwargs)  # type: ignore[arg-type]
            )
            return [c async for m in stub.StreamContainers(request) for c in m.containers]

        assert {c.id for c in await listed()} == {c.id for c in containers}
        assert {c.id for c in await listed(pod_sandbox_id=web.id)} == {
            containers[0].id,
            containers[1].id,
        }
        running = api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING)
        assert {c.id for c in await listed(pod_sandbox_id=web.id, state=running)} == {
            containers[0].id
        }
        [item] = await listed(label_selector={"tier": "b"})
        assert item.id == containers[1].id
        assert item.pod_sandbox_id == web.id
        assert item.metadata.name == "c1"
        assert item.metadata.attempt == 2
        assert item.state == api_pb2.CONTAINER_EXITED
        assert item.image.image == "busybox:latest"
        assert item.image_ref == containers[1].image_ref
        assert item.created_at == containers[1].created_at
        assert dict(item.labels) == {"tier": "b"}


@pytest.mark.root
@pytest.mark.binaries("/bin/busybox")
async def test_events_carry_a_real_containers_record(daemon: Daemon) -> None:
    ctx = ctx_of(daemon)
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        out: list[api_pb2.ContainerEventResponse] = []
        task = asyncio.create_task(collect(api_pb2_grpc.RuntimeServiceStub(ch), 1, out))
        await wait_until(lambda: ctx.events.subscribers == 1)
        async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "30"]) as record:
            ctx.events.publish(
                Event(
                    kind=EventKind.CONTAINER_STARTED, container_id=record.id, sandbox_id=sandbox.id
                )
            )
            await asyncio.wait_for(task, 10)
    [status] = out[0].containers_statuses
    assert status.id == record.id
    assert status.state == api_pb2.CONTAINER_RUNNING
    assert out[0].pod_sandbox_status.id == sandbox.id
