"""StopContainer latency through crid's CRI socket, medians.

Two cases on a host-network pod with one busybox container each round:
- graceful: ``StopContainer(timeout=10)`` of a shell that exits on SIGTERM (signal, wait
  for conmon's exit file, record the exit);
- kill: ``StopContainer(timeout=0)`` of the same (SIGKILL at once, as StopPodSandbox and
  RemoveContainer do).
Each container has a PID namespace of its own, as the kubelet asks unless the pod shares
one: crid signals its init itself (``crid.oci.init_signal``); with ``--shared-pid`` the
containers share the pod's (as critest's do), and crid runs ``runc kill`` for the SIGKILL.
What is measured beyond the signal is how fast crid notices conmon's exit file.
Run as root: ``uv run python bench/crid/stop.py [-n N] [--shared-pid]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from _floor import IMAGE, bench_daemon

from crid._cri.v1 import api_pb2, api_pb2_grpc

#: Exits on SIGTERM (busybox ``sleep`` as PID 1 would ignore it).
SCRIPT = "trap 'exit 0' TERM; sleep 600 & wait"


async def cycle(
    stub: api_pb2_grpc.RuntimeServiceStub,
    tmp: Path,
    parent: str,
    index: int,
    shared_pid: bool = False,
) -> tuple[float, float]:
    """Milliseconds of a graceful StopContainer and of a timeout-0 one."""
    pod = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=f"stop-{index}", uid=f"u{index}", namespace="b"),
        log_directory=str(tmp / "logs" / str(index)),
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{parent}/pod{index}"),
    )
    pod.linux.security_context.namespace_options.network = api_pb2.NODE
    # as the kubelet sends them unless the pod shares one: a PID namespace per container
    # (`--shared-pid`: the pod's, whose SIGKILL crid leaves to `runc kill`)
    pid_mode = api_pb2.POD if shared_pid else api_pb2.CONTAINER
    pod.linux.security_context.namespace_options.pid = pid_mode
    pod_id = (await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))).pod_sandbox_id
    took = []
    for name, timeout in (("graceful", 10), ("kill", 0)):
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name),
            image=api_pb2.ImageSpec(image=IMAGE),
            command=["sh", "-c", SCRIPT],
            log_path=f"{name}.log",
        )
        config.linux.security_context.namespace_options.pid = pid_mode
        created = await stub.CreateContainer(
            api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        )
        await stub.StartContainer(api_pb2.StartContainerRequest(container_id=created.container_id))
        await asyncio.sleep(0.1)  # the shell has set its trap
        t0 = time.perf_counter()
        await stub.StopContainer(
            api_pb2.StopContainerRequest(container_id=created.container_id, timeout=timeout)
        )
        took.append((time.perf_counter() - t0) * 1000)
    await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    await stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    return took[0], took[1]


async def main(rounds: int, shared_pid: bool) -> None:
    async with bench_daemon() as bench:
        await cycle(bench.stub, bench.tmp, bench.parent, -1, shared_pid)  # warm-up
        samples = [
            await cycle(bench.stub, bench.tmp, bench.parent, i, shared_pid) for i in range(rounds)
        ]
    graceful, kill = (list(column) for column in zip(*samples, strict=True))
    mode = "the pod's" if shared_pid else "a PID namespace per container"
    print(f"rounds: {rounds}  load average: {os.getloadavg()[0]:.2f}  ({mode})")
    cases = (("StopContainer timeout=10 (TERM)", graceful), ("timeout=0 (KILL)", kill))
    for label, values in cases:
        print(
            f"{label:32s} median {statistics.median(values):6.1f} ms"
            f"  min {min(values):6.1f}  max {max(values):6.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=20)
    parser.add_argument(
        "--shared-pid", action="store_true", help="containers share the pod's PID namespace"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.shared_pid))
