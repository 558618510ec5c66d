"""List items are built once per record object and still follow every change of a record."""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.server import Daemon
from crid.services._cache import EncodedResponseCache, MessageCache, ResponseCache
from crid.state import Container, ContainerMeta, ContainerState, PodMeta, Sandbox, SandboxState


def sandbox_record(name: str) -> Sandbox:
    meta = PodMeta(name=name, uid=f"uid-{name}", namespace="perf")
    return Sandbox(
        id=secrets.token_hex(32),
        name=f"k8s_{name}_perf_uid-{name}_0",
        meta=meta,
        state=SandboxState.READY,
        created_at=time.time_ns(),
        labels={"app": name},
    )


def container_record(sandbox: Sandbox) -> Container:
    return Container(
        id=secrets.token_hex(32),
        name=f"k8s_c_{sandbox.name}",
        sandbox_id=sandbox.id,
        meta=ContainerMeta(name="c"),
        state=ContainerState.CREATED,
        created_at=time.time_ns(),
        image="docker.io/library/busybox:latest",
        labels={"role": "main"},
    )


def test_items_are_reused_for_the_same_record_and_rebuilt_for_a_new_one() -> None:
    built: list[str] = []

    def build(record: Sandbox) -> str:
        built.append(record.id)
        return f"{record.id}:{record.state.value}"

    cache: MessageCache[Sandbox, str] = MessageCache(build, lambda s: s.id)
    a, b = sandbox_record("a"), sandbox_record("b")
    first = cache.messages([a, b], complete=True)
    assert cache.messages([a, b], complete=True) == first
    assert built == [a.id, b.id]
    # An equal but new record object (a replaced record) gets a new item.
    changed = dataclasses.replace(a, state=SandboxState.NOTREADY)
    assert cache.messages([changed], complete=False) == [f"{a.id}:{SandboxState.NOTREADY.value}"]
    assert built == [a.id, b.id, a.id]
    assert len(cache) == 2  # a filtered list keeps the others
    assert cache.messages([b], complete=True) == [first[1]]
    assert len(cache) == 1  # a complete list forgets removed records


def test_an_unchanged_list_gets_the_same_answer() -> None:
    def build(items: list[api_pb2.PodSandbox]) -> api_pb2.ListPodSandboxResponse:
        return api_pb2.ListPodSandboxResponse(items=items)

    cache: ResponseCache[api_pb2.PodSandbox, api_pb2.ListPodSandboxResponse] = ResponseCache(build)
    a, b = api_pb2.PodSandbox(id="a"), api_pb2.PodSandbox(id="b")
    first = cache.response([a, b])
    assert [i.id for i in first.items] == ["a", "b"]
    assert cache.response([a, b]) is first
    assert cache.response([a, api_pb2.PodSandbox(id="b")]) is first  # equal items
    changed = cache.response([a, api_pb2.PodSandbox(id="b", state=api_pb2.SANDBOX_NOTREADY)])
    assert changed is not first
    assert changed.items[1].state == api_pb2.SANDBOX_NOTREADY
    assert list(cache.response([a]).items) == [a]
    assert list(cache.response([]).items) == []


def test_an_unchanged_list_is_serialized_once() -> None:
    def build(items: list[api_pb2.PodSandbox]) -> api_pb2.ListPodSandboxResponse:
        return api_pb2.ListPodSandboxResponse(items=items)

    cache: EncodedResponseCache[api_pb2.PodSandbox, api_pb2.ListPodSandboxResponse] = (
        EncodedResponseCache(build)
    )
    a, b = api_pb2.PodSandbox(id="a"), api_pb2.PodSandbox(id="b")
    first = cache.encoded([a, b])
    assert api_pb2.ListPodSandboxResponse.FromString(first) == build([a, b])
    assert cache.encoded([a, api_pb2.PodSandbox(id="b")]) is first  # the same bytes object
    changed = cache.encoded([a, api_pb2.PodSandbox(id="b", state=api_pb2.SANDBOX_NOTREADY)])
    assert changed is not first
    assert api_pb2.ListPodSandboxResponse.FromString(changed).items[1].state == (
        api_pb2.SANDBOX_NOTREADY
    )
    assert cache.encoded([]) == b""


@pytest.fixture
async def stub(config: Config) -> AsyncIterator[tuple[Daemon, api_pb2_grpc.RuntimeServiceStub]]:
    daemon = Daemon(config)
    await daemon.start()
    try:
        async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
            yield daemon, api_pb2_grpc.RuntimeServiceStub(channel)
    finally:
        await daemon.stop(grace=0)


@pytest.mark.root
async def test_list_rpcs_follow_replaced_records(
    stub: tuple[Daemon, api_pb2_grpc.RuntimeServiceStub],
) -> None:
    daemon, client = stub
    assert daemon.context is not None
    registry = daemon.context.registry
    pod = sandbox_record("web")
    container = container_record(pod)
    await registry.save_sandbox(pod)
    await registry.save_container(container)

    async def pods() -> dict[str, api_pb2.PodSandbox]:
        reply = await client.ListPodSandbox(api_pb2.ListPodSandboxRequest())
        return {item.id: item for item in reply.items}

    async def containers() -> dict[str, api_pb2.Container]:
        reply = await client.ListContainers(api_pb2.ListContainersRequest())
        return {item.id: item for item in reply.containers}

    assert (await pods())[pod.id].state == api_pb2.SANDBOX_READY
    assert (await pods())[pod.id].labels == {"app": "web"}
    assert (await containers())[container.id].state == api_pb2.CONTAINER_CREATED

    await registry.save_sandbox(
        dataclasses.replace(pod, state=SandboxState.NOTREADY, labels={"app": "web", "v": "2"})
    )
    await registry.save_container(dataclasses.replace(container, state=ContainerState.RUNNING))
    listed = (await pods())[pod.id]
    assert listed.state == api_pb2.SANDBOX_NOTREADY
    assert dict(listed.labels) == {"app": "web", "v": "2"}
    assert (await containers())[container.id].state == api_pb2.CONTAINER_RUNNING
    filtered = await client.ListContainers(
        api_pb2.ListContainersRequest(
            filter=api_pb2.ContainerFilter(
                state=api_pb2.ContainerStateValue(state=api_pb2.CONTAINER_RUNNING)
            )
        )
    )
    assert [c.id for c in filtered.containers] == [container.id]

    await registry.remove_container(container.id)
    await registry.remove_sandbox(pod.id)
    assert pod.id not in await pods()
    assert container.id not in await containers()
