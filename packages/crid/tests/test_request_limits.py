"""Oversized CRI requests are refused with InvalidArgument and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.limits import MAX_ARGV_BYTES, MAX_MAP_BYTES, MAX_MOUNTS, MAX_NAME

from ._lifecycle import (
    container_config,
    crid_env,
    exec_sync,
    pod_config,
    run_pod,
    start_container,
)

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/usr/lib/cni/bridge")]


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_oversized_requests_are_refused(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        before = _rss_mib()
        big = "v" * (MAX_MAP_BYTES + 1)
        pods: list[tuple[str, api_pb2.PodSandboxConfig]] = []
        huge_name = pod_config(env, "n")
        huge_name.metadata.name = "n" * (1024 * 1024)
        pods.append(("pod name", huge_name))
        labelled = pod_config(env, "l")
        labelled.labels["big"] = big
        pods.append(("pod labels", labelled))
        annotated = pod_config(env, "a")
        for i in range(2000):
            annotated.annotations[f"k{i}"] = "x" * 300
        pods.append(("pod annotations", annotated))
        for field, config in pods:
            for _ in range(5):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await run_pod(env, config)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
                assert field in (info.value.details() or ""), info.value.details()
        assert not (await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())).items

        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        containers: list[tuple[str, api_pb2.ContainerConfig]] = []
        named = container_config("c", ["true"])
        named.metadata.name = "c" * (MAX_NAME + 1)
        containers.append(("container name", named))
        mounted = container_config("m", ["true"])
        for i in range(MAX_MOUNTS + 1):
            mounted.mounts.add(container_path=f"/m{i}", host_path=str(tmp_path))
        containers.append(("container mounts", mounted))
        env_heavy = container_config("e", ["true"])
        for i in range(20_000):
            env_heavy.envs.add(key=f"K{i}", value=b"v")
        containers.append(("container envs", env_heavy))
        argv = container_config("x", ["a" * MAX_ARGV_BYTES])
        containers.append(("container command and args", argv))
        for field, config in containers:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await env.stub.CreateContainer(
                    api_pb2.CreateContainerRequest(
                        pod_sandbox_id=pod_id, config=config, sandbox_config=pod
                    )
                )
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
            assert field in (info.value.details() or ""), info.value.details()
        assert not (await env.stub.ListContainers(api_pb2.ListContainersRequest())).containers

        cid = await start_container(env, pod_id, pod, container_config("ok", ["sleep 60"]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await exec_sync(env, cid, ["echo", "a" * MAX_ARGV_BYTES])
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ExecSync cmd" in (info.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.Exec(
                api_pb2.ExecRequest(container_id=cid, cmd=["a" * MAX_ARGV_BYTES], stdout=True)
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # The daemon runs in this process: what the refused requests cost stays bounded.
        assert _rss_mib() - before < 64, (before, _rss_mib())
