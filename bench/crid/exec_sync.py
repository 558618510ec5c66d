"""ExecSync latency through crid's CRI socket, beside ``runc exec`` run by hand.

The kubelet runs every exec liveness and readiness probe as an ExecSync (each pod's
probes every few seconds), so its cost is paid all day on a busy node. One running
busybox container in a host-network pod; rounds alternate crid's ExecSync of ``true``
with the floor: the same ``runc exec --process <json>`` of the same container, spawned
from a thread of this process, with the process.json written once beforehand.
Run as root: ``uv run python bench/crid/exec_sync.py [-n N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from _floor import IMAGE, bench_daemon

from crid._cri.v1 import api_pb2


def floor_argv(bench: object, container_id: str, bundle: Path) -> list[str]:
    """``runc exec`` of ``true`` in the container, as crid runs it."""
    ctx = bench.ctx  # type: ignore[attr-defined]
    record = ctx.registry.container(container_id)
    runtime = ctx.handler(record.runtime_handler).runtime
    config = json.loads((bundle / "config.json").read_text())
    process = dict(config["process"], args=["true"], terminal=False)
    process_file = bundle / "bench-exec.json"
    process_file.write_text(json.dumps(process))
    return [
        str(runtime.binary),
        *runtime.global_args(),
        "exec",
        "--process",
        str(process_file),
        container_id,
    ]


async def main(rounds: int) -> None:
    async with bench_daemon() as bench:
        stub = bench.stub
        pod = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name="exec", uid="u-exec", namespace="b"),
            log_directory=str(bench.tmp / "logs"),
            linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{bench.parent}/podexec"),
        )
        pod.linux.security_context.namespace_options.network = api_pb2.NODE
        run = await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image=IMAGE),
            command=["sleep", "3600"],
            log_path="c.log",
        )
        created = await stub.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=run.pod_sandbox_id, config=config, sandbox_config=pod
            )
        )
        cid = created.container_id
        await stub.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
        bundle = Path(bench.ctx.registry.container(cid).bundle)
        argv = floor_argv(bench, cid, bundle)
        request = api_pb2.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10)
        crid_ms: list[float] = []
        floor_ms: list[float] = []
        for index in range(rounds + 2):
            t0 = time.perf_counter()
            answer = await stub.ExecSync(request)
            took = (time.perf_counter() - t0) * 1000
            assert answer.exit_code == 0, answer
            t0 = time.perf_counter()
            await asyncio.to_thread(subprocess.run, argv, check=True)
            floored = (time.perf_counter() - t0) * 1000
            if index >= 2:  # warm-up
                crid_ms.append(took)
                floor_ms.append(floored)
        await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=run.pod_sandbox_id))
        await stub.RemovePodSandbox(
            api_pb2.RemovePodSandboxRequest(pod_sandbox_id=run.pod_sandbox_id)
        )
    ratio = statistics.median(c / f for c, f in zip(crid_ms, floor_ms, strict=True))
    print(f"rounds: {rounds}  load average: {os.getloadavg()[0]:.2f}")
    for label, values in (("crid ExecSync(true)", crid_ms), ("floor runc exec", floor_ms)):
        print(
            f"{label:22s} median {statistics.median(values):6.1f} ms"
            f"  p90 {statistics.quantiles(values, n=10)[-1]:6.1f}  min {min(values):6.1f}"
        )
    print(f"per-round ratio crid/floor: median {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=40)
    asyncio.run(main(parser.parse_args().rounds))
