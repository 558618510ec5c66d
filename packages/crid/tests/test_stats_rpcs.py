"""Stats RPCs over the socket, against real containers in real cgroups (v1 here).

The kubelet evicts on these numbers, so each is checked against a workload whose usage
is known: a process that fills N MiB of tmpfs, a busy loop, a known number of processes,
a file of known size in the writable layer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import POD_METRIC_GROUPS, Config
from crid.context import Context
from crid.server import Daemon
from crid.stats import METRIC_DESCRIPTORS, host_groups, mountpoint_of
from ocispec.generate import ResourceOptions

from ._observe import container, pod, wait_until

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/bin/busybox")]

MiB = 1 << 20


@pytest.fixture
async def daemon(config: Config) -> AsyncIterator[Daemon]:
    running = Daemon(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop(grace=0)


@pytest.fixture
async def stub(daemon: Daemon) -> AsyncIterator[api_pb2_grpc.RuntimeServiceStub]:
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        yield api_pb2_grpc.RuntimeServiceStub(ch)


def ctx_of(daemon: Daemon) -> Context:
    assert daemon.context is not None
    return daemon.context


async def test_memory_processes_and_writable_layer_of_known_workloads(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    script = (
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null;"
        " dd if=/dev/zero of=/tmp/blob bs=1M count=3 2>/dev/null;"
        " touch /tmp/ready; sleep 60 & sleep 60 & wait"
    )
    async with (
        pod(ctx) as sandbox,
        container(
            ctx,
            sandbox,
            ["sh", "-c", script],
            resources=ResourceOptions(memory_limit=256 * MiB),
        ) as record,
    ):
        upper = Path(ctx.store.store.root)
        rootfs = await ctx.store.mount_container(record.id)
        await wait_until(lambda: (rootfs / "tmp" / "ready").exists())
        pids = ctx.hierarchies.controller_path("pids", record.cgroup_path)
        assert pids is not None
        await wait_until(lambda: (pids / "pids.current").read_text().strip() == "3")
        reply = await stub.ContainerStats(
            api_pb2.ContainerStatsRequest(container_id=record.id[:10])
        )
        stats = reply.stats
        assert stats.attributes.id == record.id
        assert stats.attributes.metadata.name == record.meta.name
        assert dict(stats.attributes.labels) == record.labels
        memory = stats.memory
        assert memory.working_set_bytes.value >= 48 * MiB
        assert memory.usage_bytes.value >= memory.working_set_bytes.value
        assert memory.working_set_bytes.value < 200 * MiB
        assert memory.available_bytes.value == 256 * MiB - memory.working_set_bytes.value
        assert memory.page_faults.value > 0
        assert memory.HasField("major_page_faults")
        assert memory.HasField("rss_bytes")
        assert memory.timestamp > 0
        cpu = stats.cpu
        assert cpu.usage_core_nano_seconds.value > 0
        layer = stats.writable_layer
        assert layer.used_bytes.value >= 3 * MiB
        assert layer.inodes_used.value >= 2  # /tmp/blob, /tmp/ready (and /tmp itself)
        assert layer.fs_id.mountpoint == mountpoint_of(upper)

        pod_stats = (
            await stub.PodSandboxStats(api_pb2.PodSandboxStatsRequest(pod_sandbox_id=sandbox.id))
        ).stats
        assert pod_stats.attributes.id == sandbox.id
        assert pod_stats.attributes.metadata.namespace == "test"
        linux = pod_stats.linux
        # The pod cgroup holds sh + two sleeps; its memory holds the container's.
        assert linux.process.process_count.value == 3
        assert linux.memory.working_set_bytes.value >= 48 * MiB
        assert not linux.memory.HasField("available_bytes")  # the pod has no limit
        assert [c.attributes.id for c in linux.containers] == [record.id]
        assert linux.containers[0].writable_layer.used_bytes.value >= 3 * MiB


async def test_cpu_rate_of_a_busy_loop_is_about_one_core(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with (
        pod(ctx) as sandbox,
        container(ctx, sandbox, ["sh", "-c", "while :; do :; done"]) as record,
    ):
        request = api_pb2.ContainerStatsRequest(container_id=record.id)
        first = (await stub.ContainerStats(request)).stats.cpu
        assert not first.HasField("usage_nano_cores")  # no previous sample yet
        # Stats come from the sampler's cache: poll until its next sample replaces this one
        # (polling far more often than it samples, so that one follows the first directly).
        second = first
        for _ in range(100):
            await asyncio.sleep(0.05)
            second = (await stub.ContainerStats(request)).stats.cpu
            if second.timestamp != first.timestamp:
                break
        assert second.timestamp > first.timestamp
        assert second.usage_core_nano_seconds.value > first.usage_core_nano_seconds.value
        elapsed = second.timestamp - first.timestamp
        used = second.usage_core_nano_seconds.value - first.usage_core_nano_seconds.value
        assert second.usage_nano_cores.value == used * 1_000_000_000 // elapsed
        # One spinning shell uses (nearly) one core of the two; allow for a busy machine.
        assert 300_000_000 < second.usage_nano_cores.value <= 1_100_000_000


async def test_pod_network_counters_from_the_pods_namespace(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        netns = f"/proc/{record.pid}/ns/net"  # the pod's network namespace
        await ctx.registry.save_sandbox(dataclasses.replace(sandbox, namespaces={"network": netns}))
        for args in (
            ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"],
            ["ip", "addr", "add", "10.231.0.1/24", "dev", "eth0"],
            ["ip", "link", "set", "eth0", "up"],
            ["ip", "link", "set", "peer0", "up"],
            ["ip", "neigh", "add", "10.231.0.2", "lladdr", "02:00:00:00:00:02", "dev", "eth0"],
        ):
            subprocess.run(["nsenter", f"--net={netns}", *args], check=True)
        send = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for _ in range(10): s.sendto(b'x' * 1000, ('10.231.0.2', 9))"
        )
        subprocess.run(["nsenter", f"--net={netns}", sys.executable, "-c", send], check=True)
        request = api_pb2.PodSandboxStatsRequest(pod_sandbox_id=sandbox.id)
        network = (await stub.PodSandboxStats(request)).stats.linux.network
        assert network.timestamp > 0
        assert network.default_interface.name == "eth0"
        assert network.default_interface.tx_bytes.value >= 10 * 1000
        interfaces = {i.name: i for i in network.interfaces}
        assert set(interfaces) == {"eth0", "peer0"}  # loopback left out
        assert interfaces["peer0"].rx_bytes.value >= 10 * 1000
        # Another pid (here: crid's own) is never taken for the pod's namespace.
        stale = dataclasses.replace(record, pid=os.getpid())
        await ctx.registry.save_container(stale)
        reply = await stub.PodSandboxStats(request)
        assert not reply.stats.linux.HasField("network")


async def test_list_filters_and_stream_variants(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with (
        pod(ctx, labels={"app": "web"}) as web,
        pod(ctx, labels={"app": "db"}) as db,
        container(ctx, web, ["sleep", "60"], labels={"role": "front"}) as front,
        container(ctx, web, ["sleep", "60"], labels={"role": "side"}) as side,
        container(ctx, db, ["sleep", "60"], labels={"role": "front"}) as store,
        container(ctx, db, ["sleep", "60"], start=False) as created,
    ):

        async def listed(**kwargs: object) -> set[str]:
            request = api_pb2.ListContainerStatsRequest(
                filter=api_pb2.ContainerStatsFilter(**kwargs)  # type: ignore[arg-type]
            )
            reply = await stub.ListContainerStats(request)
            return {s.attributes.id for s in reply.stats}

        everything = {front.id, side.id, store.id}  # only running containers have stats
        assert {
            s.attributes.id
            for s in (await stub.ListContainerStats(api_pb2.ListContainerStatsRequest())).stats
        } == everything
        assert created.id not in await listed()
        assert await listed(id=front.id[:12]) == {front.id}
        assert await listed(pod_sandbox_id=web.id) == {front.id, side.id}
        assert await listed(label_selector={"role": "front"}) == {front.id, store.id}
        assert await listed(pod_sandbox_id=db.id, label_selector={"role": "side"}) == set()
        assert await listed(id="0" * 64) == set()

        streamed: list[str] = []
        async for message in stub.StreamContainerStats(api_pb2.StreamContainerStatsRequest()):
            assert len(message.container_stats) >= 1
            streamed += [s.attributes.id for s in message.container_stats]
        assert sorted(streamed) == sorted(everything)

        pods = await stub.ListPodSandboxStats(
            api_pb2.ListPodSandboxStatsRequest(
                filter=api_pb2.PodSandboxStatsFilter(label_selector={"app": "db"})
            )
        )
        assert [p.attributes.id for p in pods.stats] == [db.id]
        assert [c.attributes.id for c in pods.stats[0].linux.containers] == [store.id]
        both = await stub.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest())
        assert {p.attributes.id for p in both.stats} >= {web.id, db.id}
        streamed = []
        async for pmsg in stub.StreamPodSandboxStats(
            api_pb2.StreamPodSandboxStatsRequest(
                filter=api_pb2.PodSandboxStatsFilter(id=web.id[:16])
            )
        ):
            streamed += [p.attributes.id for p in pmsg.pod_sandbox_stats]
        assert streamed == [web.id]

        descriptors = (
            await stub.ListMetricDescriptors(api_pb2.ListMetricDescriptorsRequest())
        ).descriptors
        keys = {d.name: list(d.label_keys) for d in descriptors}
        # Every group by default, less those whose controller the host lacks (hugetlb here).
        available = ctx_of(daemon).controllers.available
        expected = host_groups(POD_METRIC_GROUPS, available)
        assert set(keys) == {d.name for d in METRIC_DESCRIPTORS if d.group in {"", *expected}}
        assert ("container_hugetlb_usage_bytes" in keys) == ("hugetlb" in available)
        metrics = (
            await stub.ListPodSandboxMetrics(api_pb2.ListPodSandboxMetricsRequest())
        ).pod_metrics
        by_pod = {m.pod_sandbox_id: m for m in metrics}
        web_metrics = by_pod[web.id]
        assert {c.container_id for c in web_metrics.container_metrics} == {front.id, side.id}
        pod_level = {m.name: m for m in web_metrics.metrics}
        assert pod_level["container_processes"].value.value == 2
        assert pod_level["container_memory_working_set_bytes"].value.value > 0
        for c in web_metrics.container_metrics:
            for metric in c.metrics:
                assert len(metric.label_values) == len(keys[metric.name])
                labels = dict(zip(keys[metric.name], metric.label_values, strict=True))
                assert labels["name"] == c.container_id
                assert labels["pod"] == web.meta.name
                assert labels["namespace"] == "test"
            names = {m.name for m in c.metrics}
            assert {"container_cpu_usage_seconds_total", "container_fs_usage_bytes"} <= names
            processes = [m for m in c.metrics if m.name == "container_processes"]
            assert processes[0].value.value == 1
            assert processes[0].metric_type == api_pb2.GAUGE
        streamed_ids: list[str] = []
        async for mmsg in stub.StreamPodSandboxMetrics(api_pb2.StreamPodSandboxMetricsRequest()):
            streamed_ids += [m.pod_sandbox_id for m in mmsg.pod_sandbox_metrics]
        assert sorted(streamed_ids) == sorted(by_pod)


async def test_unknown_ids_are_not_found(stub: api_pb2_grpc.RuntimeServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ContainerStats(api_pb2.ContainerStatsRequest(container_id="f" * 64))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PodSandboxStats(api_pb2.PodSandboxStatsRequest(pod_sandbox_id="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    empty = [m async for m in stub.StreamContainerStats(api_pb2.StreamContainerStatsRequest())]
    assert empty == []  # no items: no message at all, then EOF
