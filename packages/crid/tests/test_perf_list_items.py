"""List items are built once per record object and still follow every change of a record."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.server import Daemon
from crid.services._cache import EncodedResponseCache, MessageCache, PollMemo, ResponseCache
from crid.state import (
    Container,
    ContainerMeta,
    ContainerState,
    PodMeta,
    Registry,
    Sandbox,
    SandboxState,
)
from crid.stats.sampler import StatsSampler


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


def test_a_poll_memo_answers_while_its_state_holds() -> None:
    memo = PollMemo(limit=2)
    assert memo.get(1, b"") is None
    memo.put(1, b"", b"all")
    memo.put(1, b"f", b"filtered", until=10.0)
    assert memo.get(1, b"") == b"all"
    assert memo.get(1, b"f", now=9.9) == b"filtered"
    assert memo.get(1, b"f", now=10.0) is None  # its samples aged out
    assert memo.get(2, b"") is None  # the records changed
    memo.put(2, b"", b"new")
    assert memo.get(1, b"f", now=0.0) is None  # answers of the old state are gone
    memo.put(2, b"a", b"A")
    memo.put(2, b"b", b"B")  # over the limit: the oldest request goes
    assert (memo.get(2, b""), memo.get(2, b"a"), memo.get(2, b"b")) == (None, b"A", b"B")
    built: list[bytes] = []

    def build() -> bytes:
        built.append(b"x")
        return b"built"

    assert memo.answer(3, b"q", build) == memo.answer(3, b"q", build) == b"built"
    assert len(built) == 1  # built once, then remembered


def test_a_poll_memo_keeps_its_answers_within_its_byte_budget() -> None:
    """Many requests with large answers (a client listing a big node's stats under many
    selectors) keep at most ``max_bytes``, the oldest dropped first."""
    memo = PollMemo(limit=256, max_bytes=100_000)
    answer = b"s" * 30_000
    for n in range(10):
        memo.put(1, b"selector %d" % n, answer)
        assert memo.size <= 100_000
    assert memo.get(1, b"selector 9") == answer
    assert memo.get(1, b"selector 6") is None  # three fit; the oldest went
    assert [memo.get(1, b"selector %d" % n) is not None for n in (7, 8)] == [True, True]
    memo.put(1, b"selector 9", b"smaller")  # an answer given anew replaces its old bytes
    assert memo.size == 2 * (30_000 + 10) + len(b"smaller") + 10
    memo.put(1, b"huge", b"h" * 200_000)  # larger than the budget: not kept, nothing lost
    assert memo.get(1, b"huge") is None
    assert memo.get(1, b"selector 8") == answer
    memo.put(2, b"", b"x")  # a new state starts from nothing
    assert memo.size == 1


async def test_the_registry_counts_every_change_the_lists_show(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    try:
        pod = sandbox_record("count")
        container = container_record(pod)
        seen = [registry.changes]

        def changed() -> bool:
            seen.append(registry.changes)
            return seen[-1] != seen[-2]

        await registry.save_sandbox(pod)
        assert changed()
        registry.hide(pod.id)
        assert changed()
        registry.reveal(pod.id)
        assert changed()
        await registry.save_container(container)
        assert changed()
        await registry.save_container(dataclasses.replace(container, state=ContainerState.RUNNING))
        assert changed()
        await registry.remove_container(container.id)
        assert changed()
        other = container_record(pod)
        registry.reserve_container(other)
        await asyncio.to_thread(registry.write_new_container, other)
        registry.adopt_container(other)
        assert changed()
        await registry.remove_container(other.id)
        assert changed()
        await registry.save_sandbox(dataclasses.replace(pod, state=SandboxState.NOTREADY))
        assert changed()
        await registry.remove_sandbox(pod.id)
        assert changed()
        registry.find_sandbox(pod.id)
        list(registry.sandboxes())
        assert not changed()  # reads change nothing
    finally:
        registry.close()


@pytest.mark.root
async def test_stats_polls_follow_records_and_aging_samples(
    stub: tuple[Daemon, api_pb2_grpc.RuntimeServiceStub],
) -> None:
    daemon, client = stub
    assert daemon.context is not None
    registry = daemon.context.registry
    pod = sandbox_record("polled")
    await registry.save_sandbox(pod)

    async def stats() -> dict[str, api_pb2.PodSandboxStats]:
        reply = await client.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest())
        return {item.attributes.id: item for item in reply.stats}

    first = (await stats())[pod.id]
    assert dict(first.attributes.labels) == {"app": "polled"}
    assert (await stats())[pod.id] == first  # an unchanged poll: the same answer

    await registry.save_sandbox(dataclasses.replace(pod, labels={"app": "polled", "v": "2"}))
    assert dict((await stats())[pod.id].attributes.labels) == {"app": "polled", "v": "2"}
    await registry.save_sandbox(dataclasses.replace(pod, state=SandboxState.NOTREADY))
    assert pod.id not in await stats()  # only READY pods have stats
    await registry.save_sandbox(pod)

    # With the background refresh stopped, a sample that ages out is taken again on demand.
    sampler = StatsSampler.of(daemon.context)
    await sampler.stop()
    sampler.interval, sampler.max_age = 3600.0, 0.05
    sampled = (await stats())[pod.id].linux.cpu.timestamp
    assert (await stats())[pod.id].linux.cpu.timestamp == sampled
    await asyncio.sleep(0.1)
    assert (await stats())[pod.id].linux.cpu.timestamp > sampled
    await registry.remove_sandbox(pod.id)
    assert pod.id not in await stats()
