"""Runtime-wide RPCs against real containers: resources land in the cgroup files, conmon
reopens a rotated log, the pod CIDR is recorded, checkpoints are refused clearly."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.context import Context
from crid.server import Daemon
from crid.state import ContainerState

from ._observe import container, pod, wait_until

pytestmark = pytest.mark.binaries("runc", "conmon")

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


async def failing(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


def cgroup_file(ctx: Context, controller: str, cgroup: str, name: str) -> str:
    directory = ctx.hierarchies.controller_path(controller, cgroup)
    assert directory is not None
    return (directory / name).read_text().strip()


async def test_runtime_config_reports_the_cgroup_driver(
    tmp_path: Path, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    reply = await stub.RuntimeConfig(api_pb2.RuntimeConfigRequest())
    assert reply.linux.cgroup_driver == api_pb2.CGROUPFS
    # cgroup_manager = "systemd" answers SYSTEMD (test_cgroups_systemd.py, under systemd).


async def test_pod_cidr_is_recorded_reported_and_validated(config: Config) -> None:
    def update(cidr: str) -> api_pb2.UpdateRuntimeConfigRequest:
        return api_pb2.UpdateRuntimeConfigRequest(
            runtime_config=api_pb2.RuntimeConfig(
                network_config=api_pb2.NetworkConfig(pod_cidr=cidr)
            )
        )

    for round_ in range(2):  # recorded across a restart of crid
        running = Daemon(config)
        await running.start()
        try:
            async with grpc.aio.insecure_channel(f"unix://{running.socket_path}") as ch:
                stub = api_pb2_grpc.RuntimeServiceStub(ch)
                if round_ == 0:
                    status = await stub.Status(api_pb2.StatusRequest(verbose=True))
                    assert status.info["podCIDR"] == ""
                    await stub.UpdateRuntimeConfig(update("10.244.1.0/24, fd00:10:244:1::/64"))
                    error = await failing(stub.UpdateRuntimeConfig(update("10.244.1.0/33")))
                    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                    assert "10.244.1.0/33" in (error.details() or "")
                    await stub.UpdateRuntimeConfig(update(""))  # empty: keeps the last one
                status = await stub.Status(api_pb2.StatusRequest(verbose=True))
                assert status.info["podCIDR"] == "10.244.1.0/24,fd00:10:244:1::/64"
        finally:
            await running.stop(grace=0)


@pytest.mark.root
@pytest.mark.binaries("/bin/busybox")
async def test_update_container_resources_lands_in_the_cgroup(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "60"]) as record:
        config = api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="c"))
        await ctx.registry.save_container(
            dataclasses.replace(record, config=config.SerializeToString())
        )
        resources = api_pb2.LinuxContainerResources(
            cpu_period=100000,
            cpu_quota=50000,
            cpu_shares=512,
            memory_limit_in_bytes=128 * MiB,
            cpuset_cpus="0",
        )
        await stub.UpdateContainerResources(
            api_pb2.UpdateContainerResourcesRequest(container_id=record.id[:12], linux=resources)
        )
        cg = record.cgroup_path
        assert cgroup_file(ctx, "memory", cg, "memory.limit_in_bytes") == str(128 * MiB)
        assert cgroup_file(ctx, "cpu", cg, "cpu.cfs_quota_us") == "50000"
        assert cgroup_file(ctx, "cpu", cg, "cpu.cfs_period_us") == "100000"
        assert cgroup_file(ctx, "cpu", cg, "cpu.shares") == "512"
        assert cgroup_file(ctx, "cpuset", cg, "cpuset.cpus") == "0"
        stored = api_pb2.ContainerConfig.FromString(ctx.registry.container(record.id).config)
        assert stored.linux.resources == resources
        assert stored.metadata.name == "c"

        for bad, words in [
            (api_pb2.LinuxContainerResources(cpu_shares=1), "cpu shares"),
            (api_pb2.LinuxContainerResources(memory_limit_in_bytes=-5), "memory_limit_in_bytes"),
            (api_pb2.LinuxContainerResources(cpu_period=10), "cpu period"),
        ]:
            error = await failing(
                stub.UpdateContainerResources(
                    api_pb2.UpdateContainerResourcesRequest(container_id=record.id, linux=bad)
                )
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, words
            assert words in (error.details() or "")
        # Nothing of the refused updates was applied.
        assert cgroup_file(ctx, "cpu", cg, "cpu.shares") == "512"

        exited = dataclasses.replace(record, state=ContainerState.EXITED)
        await ctx.registry.save_container(exited)
        error = await failing(
            stub.UpdateContainerResources(
                api_pb2.UpdateContainerResourcesRequest(container_id=record.id, linux=resources)
            )
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    error = await failing(
        stub.UpdateContainerResources(
            api_pb2.UpdateContainerResourcesRequest(
                container_id="f" * 64, linux=api_pb2.LinuxContainerResources()
            )
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.root
async def test_update_pod_sandbox_resources_writes_the_pod_cgroup(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with pod(ctx) as sandbox:
        await stub.UpdatePodSandboxResources(
            api_pb2.UpdatePodSandboxResourcesRequest(
                pod_sandbox_id=sandbox.id,
                resources=api_pb2.LinuxContainerResources(
                    cpu_period=100000,
                    cpu_quota=150000,
                    cpu_shares=1024,
                    memory_limit_in_bytes=512 * MiB,
                ),
                overhead=api_pb2.LinuxContainerResources(
                    cpu_quota=10000, cpu_shares=100, memory_limit_in_bytes=32 * MiB
                ),
            )
        )
        cg = sandbox.cgroup_parent
        assert cgroup_file(ctx, "memory", cg, "memory.limit_in_bytes") == str(544 * MiB)
        assert cgroup_file(ctx, "cpu", cg, "cpu.cfs_quota_us") == "160000"
        assert cgroup_file(ctx, "cpu", cg, "cpu.cfs_period_us") == "100000"
        assert cgroup_file(ctx, "cpu", cg, "cpu.shares") == "1124"
        error = await failing(
            stub.UpdatePodSandboxResources(
                api_pb2.UpdatePodSandboxResourcesRequest(
                    pod_sandbox_id=sandbox.id,
                    resources=api_pb2.LinuxContainerResources(cpu_shares=-3),
                )
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await failing(
        stub.UpdatePodSandboxResources(
            api_pb2.UpdatePodSandboxResourcesRequest(pod_sandbox_id="0" * 64)
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.root
@pytest.mark.binaries("/bin/busybox")
async def test_reopen_container_log_after_rotation(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    script = "i=0; while :; do echo line$i; i=$((i+1)); sleep 0.02; done"
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sh", "-c", script]) as record:
        log = Path(record.log_path)
        await wait_until(lambda: log.exists() and log.read_text().count("\n") >= 3)
        rotated = log.with_name(log.name + ".1")
        log.rename(rotated)
        await stub.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=record.id))
        assert log.exists()  # the call returns once the fresh file is there
        await wait_until(lambda: log.read_text().count("\n") >= 3)
        old_lines = rotated.read_text().splitlines()
        new_lines = log.read_text().splitlines()
        last_old = int(old_lines[-1].split(" ", 3)[3].removeprefix("line"))
        first_new = int(new_lines[0].split(" ", 3)[3].removeprefix("line"))
        assert first_new == last_old + 1  # nothing lost, nothing written twice
        await asyncio.sleep(0.1)
        assert rotated.read_text().splitlines() == old_lines  # the old file is left alone

        await ctx.registry.save_container(dataclasses.replace(record, state=ContainerState.EXITED))
        error = await failing(
            stub.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id=record.id))
        )
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = await failing(
        stub.ReopenContainerLog(api_pb2.ReopenContainerLogRequest(container_id="e" * 64))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.root
@pytest.mark.binaries("/bin/busybox")
async def test_checkpoint_is_unimplemented_naming_criu(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with pod(ctx) as sandbox, container(ctx, sandbox, ["sleep", "30"]) as record:
        error = await failing(
            stub.CheckpointContainer(
                api_pb2.CheckpointContainerRequest(container_id=record.id, location="/tmp/x.tar")
            )
        )
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "CRIU" in (error.details() or "")
        assert record.id in (error.details() or "")
    error = await failing(
        stub.CheckpointContainer(api_pb2.CheckpointContainerRequest(container_id="d" * 64))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
