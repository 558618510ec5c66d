"""CreateContainer through crid's CRI socket versus conmon→runc create without any daemon.

Side by side in one run, interleaved round by round so both see the same machine load:
- floor (``_floor.ContainerFloor``): a plain thread starts conmon (sync and start pipes,
  as crid does) on a bundle whose config.json is the one crid generated for the same
  container, with an overlay root filesystem mounted beforehand (untimed), and waits for
  conmon's pid report;
- crid: the CreateContainer RPC over a real gRPC channel to an in-process Daemon.
Serial (one at a time) and 8-way parallel (8 pods, 8 creates in flight at once): prints
median, p90 and max of each. Last, CreateContainer's latency inside 8 concurrent critest-style
pod lifecycles (RunPodSandbox, CreateContainer, StartContainer, StopPodSandbox,
RemovePodSandbox in a loop), where creates compete with the other RPCs' work. Run as root:
``uv run python bench/crid/create.py [-n ROUNDS] [-p PARALLEL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path

from _floor import (
    ContainerFloor,
    bench_daemon,
    container_config,
    load_average,
    pod_config,
    summary,
    template_config,
)

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.oci import ConmonOptions


def timed_floor_create(floor: ContainerFloor, options: ConmonOptions) -> float:
    """conmon→runc create as a bare program would run it (milliseconds)."""
    t0 = time.perf_counter()
    floor.create(options)
    return (time.perf_counter() - t0) * 1000


def parallel_floor(
    floor: ContainerFloor, template: dict[str, object], lowers: str, parent: str, count: int
) -> list[float]:
    bundles = [floor.prepare(template, lowers, parent) for _ in range(count)]
    results: list[float] = [0.0] * count
    barrier = threading.Barrier(count)

    def one(i: int) -> None:
        barrier.wait()
        results[i] = timed_floor_create(floor, bundles[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for options in bundles:
        floor.remove(options)
    return results


async def timed_create(
    stub: api_pb2_grpc.RuntimeServiceStub, pod_id: str, pod: api_pb2.PodSandboxConfig, attempt: int
) -> tuple[str, float]:
    t0 = time.perf_counter()
    reply = await stub.CreateContainer(
        api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=container_config(attempt), sandbox_config=pod
        )
    )
    return reply.container_id, (time.perf_counter() - t0) * 1000


async def lifecycle_worker(
    stub: api_pb2_grpc.RuntimeServiceStub, tmp: Path, parent: str, worker: int, cycles: int
) -> list[float]:
    """A critest-style loop: run a pod, create and start a container, tear the pod down."""
    timings = []
    for cycle in range(cycles):
        pod = pod_config(tmp, parent, 1000 * (worker + 1) + cycle)
        reply = await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
        cid, ms = await timed_create(stub, reply.pod_sandbox_id, pod, 0)
        timings.append(ms)
        await stub.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
        await stub.StopPodSandbox(
            api_pb2.StopPodSandboxRequest(pod_sandbox_id=reply.pod_sandbox_id)
        )
        await stub.RemovePodSandbox(
            api_pb2.RemovePodSandboxRequest(pod_sandbox_id=reply.pod_sandbox_id)
        )
    return timings


async def remove_all(stub: api_pb2_grpc.RuntimeServiceStub, ids: list[str]) -> None:
    await asyncio.gather(
        *(stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=c)) for c in ids)
    )


async def run(rounds: int, parallel: int) -> None:
    serial_crid: list[float] = []
    serial_floor: list[float] = []
    par_crid: list[float] = []
    par_floor: list[float] = []
    serial_cpu: list[float] = []
    mixed: list[float] = []
    loads = [load_average()]
    async with bench_daemon() as bench:
        stub, tmp, parent = bench.stub, bench.tmp, bench.parent
        pods = [pod_config(tmp, parent, i) for i in range(parallel)]
        pod_ids = []
        for pod in pods:
            reply = await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
            pod_ids.append(reply.pod_sandbox_id)
        # Warm-up (caches, first conmon), and the config.json the floor reuses.
        template, lowers = await template_config(bench, pod_ids[0], pods[0])
        floor = ContainerFloor.of(bench.ctx, tmp / "floor")
        cgroup = f"/{parent}/pod0"
        attempt = 1
        for _ in range(rounds):
            options = await asyncio.to_thread(floor.prepare, template, lowers, cgroup)
            serial_floor.append(await asyncio.to_thread(timed_floor_create, floor, options))
            await asyncio.to_thread(floor.remove, options)
            cpu = time.process_time()
            cid, ms = await timed_create(stub, pod_ids[0], pods[0], attempt)
            serial_cpu.append((time.process_time() - cpu) * 1000)
            attempt += 1
            serial_crid.append(ms)
            await remove_all(stub, [cid])
        for _ in range(max(1, rounds // 4)):
            par_floor += await asyncio.to_thread(
                parallel_floor, floor, template, lowers, cgroup, parallel
            )
            created = await asyncio.gather(
                *(
                    timed_create(stub, pod_id, pod, attempt)
                    for pod_id, pod in zip(pod_ids, pods, strict=True)
                )
            )
            attempt += 1
            par_crid += [ms for _, ms in created]
            await remove_all(stub, [cid for cid, _ in created])
        for worker_timings in await asyncio.gather(
            *(lifecycle_worker(stub, tmp, parent, w, max(1, rounds // 4)) for w in range(parallel))
        ):
            mixed += worker_timings
        loads.append(load_average())
        for pod_id in pod_ids:
            await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            await stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    print(f"rounds: {rounds} serial, {max(1, rounds // 4)} x {parallel} parallel")
    print(f"load average before / after: {loads[0]} / {loads[1]}")
    print(f"{'CreateContainer (ms)':<34}{'median':>8}{'p90':>8}{'max':>8}")
    rows = [
        ("serial: floor conmon→runc create", serial_floor),
        ("serial: crid CreateContainer", serial_crid),
        (f"{parallel}-way: floor conmon→runc create", par_floor),
        (f"{parallel}-way: crid CreateContainer", par_crid),
        (f"{parallel}-way pod lifecycles: crid", mixed),
    ]
    for label, samples in rows:
        med, p90, top = summary(samples)
        print(f"{label:<34}{med:>8.1f}{p90:>8.1f}{top:>8.1f}")
    print(
        f"crid's CPU time per serial CreateContainer (all its threads, gRPC client"
        f" included): median {statistics.median(serial_cpu):.1f} ms"
    )
    print(
        f"serial overhead over the floor: {summary(serial_crid)[0] - summary(serial_floor)[0]:.1f}"
        f" ms; {parallel}-way p90/median: {summary(par_crid)[1] / summary(par_crid)[0]:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=20)
    parser.add_argument("-p", "--parallel", type=int, default=8)
    args = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("Linux only")
    asyncio.run(run(args.rounds, args.parallel))
