"""The first stats and metrics calls of a daemon see every running container.

The kubelet's first ListContainerStats after crid (re)starts must list each running
container with live numbers: a stats cache that answered its first call empty, or a
start-up that lost containers it should have kept, would make the kubelet see none
(its eviction manager then works blind). Real pods, containers under conmon and runc,
cgroup v1; the daemon is stopped and started again with its containers running.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc

from ._lifecycle import container_config, crid_env, pod_config, run_pod, start_container

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

MiB = 1 << 20
#: 8 MiB held by the shell itself (anonymous memory): a working set no idle container has.
WORKLOAD = 'x=$(head -c 8388608 /dev/zero | tr "\\0" a); touch /tmp/ready; sleep 120; echo ${#x}'


async def first_calls(socket: Path, pod_id: str, ids: set[str]) -> None:
    """The first ListContainerStats, ListPodSandboxStats and ListPodSandboxMetrics of
    the daemon on ``socket`` each report every container of ``ids`` with live values."""
    async with grpc.aio.insecure_channel(f"unix://{socket}") as channel:
        stub = api_pb2_grpc.RuntimeServiceStub(channel)
        stats = (await stub.ListContainerStats(api_pb2.ListContainerStatsRequest())).stats
        assert {s.attributes.id for s in stats} == ids
        for found in stats:
            assert found.memory.working_set_bytes.value >= 8 * MiB, found
            assert found.cpu.usage_core_nano_seconds.value > 0, found
        reply = await stub.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest())
        [pod] = [p for p in reply.stats if p.attributes.id == pod_id]
        assert {c.attributes.id for c in pod.linux.containers} == ids
        assert pod.linux.memory.working_set_bytes.value >= 16 * MiB
        metrics = await stub.ListPodSandboxMetrics(api_pb2.ListPodSandboxMetricsRequest())
        [of_pod] = [m for m in metrics.pod_metrics if m.pod_sandbox_id == pod_id]
        assert {c.container_id for c in of_pod.container_metrics} == ids
        for ctr in of_pod.container_metrics:
            [working_set] = [
                m.value.value for m in ctr.metrics if m.name == "container_memory_working_set_bytes"
            ]
            assert working_set >= 8 * MiB


async def test_first_stats_calls_see_every_running_container_after_a_restart(
    tmp_path: Path,
) -> None:
    async with crid_env(tmp_path) as env:
        config = pod_config(env, "first")
        pod_id = await run_pod(env, config)
        ids = {
            await start_container(env, pod_id, config, container_config(name, [WORKLOAD]))
            for name in ("a", "b")
        }
        for cid in ids:  # until the shell holds its 8 MiB, there is nothing to see
            reply = await env.stub.ExecSync(
                api_pb2.ExecSyncRequest(
                    container_id=cid,
                    cmd=["sh", "-c", "while [ ! -e /tmp/ready ]; do sleep 0.05; done"],
                    timeout=20,
                )
            )
            assert reply.exit_code == 0
        await first_calls(env.daemon.socket_path, pod_id, ids)

        # Stopped and started again (as after an upgrade): conmon keeps the containers
        # running meanwhile, and the new daemon's very first calls must see them.
        await env.daemon.stop(grace=0)
        await env.daemon.start()
        await first_calls(env.daemon.socket_path, pod_id, ids)
