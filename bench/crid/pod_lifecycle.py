"""A whole pod through crid's CRI socket beside the same steps by hand, in one run.

crid: RunPodSandbox + CreateContainer + StartContainer (a busybox ``sleep``) with a CNI
bridge network (bridge + host-local + portmap, no masquerading, a random 10.x subnet),
then StopPodSandbox + RemovePodSandbox, against an in-process Daemon over a real gRPC
channel. The floor (``_floor.PodFloor``, no daemon): unshare-pinned namespaces and the
same conflist's ADD, an overlayfs rootfs, conmon→runc create with crid's own config.json,
runc start; teardown: runc kill/delete, CNI DEL, unpin, rootfs and cgroup removal.
Rounds alternate which goes first, so both see the same machine load.
Targets: start at most 1.3 times the floor; teardown compared with the floor's.
Run as root: ``uv run python bench/crid/pod_lifecycle.py [-n N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from _floor import (
    Bench,
    CniFloor,
    ContainerFloor,
    PodFloor,
    bench_daemon,
    container_config,
    load_average,
    pod_config,
    summary,
    template_config,
)

from crid._cri.v1 import api_pb2

#: Run, Create, Start, start path, teardown (milliseconds).
Sample = tuple[float, float, float, float, float]


async def crid_cycle(bench: Bench, index: int) -> Sample:
    stub = bench.stub
    pod = pod_config(bench.tmp, bench.parent, index)
    t0 = time.perf_counter()
    pod_id = (await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))).pod_sandbox_id
    ran = time.perf_counter()
    created = await stub.CreateContainer(
        api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=container_config(), sandbox_config=pod
        )
    )
    made = time.perf_counter()
    await stub.StartContainer(api_pb2.StartContainerRequest(container_id=created.container_id))
    t1 = time.perf_counter()
    await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    await stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    t2 = time.perf_counter()
    ms = 1000
    return ((ran - t0) * ms, (made - ran) * ms, (t1 - made) * ms, (t1 - t0) * ms, (t2 - t1) * ms)


def floor_cycle(floor: PodFloor, index: int) -> Sample:
    t0 = time.perf_counter()
    pod = floor.run(index)
    ran = time.perf_counter()
    floor.create(pod)
    made = time.perf_counter()
    floor.start(pod)
    t1 = time.perf_counter()
    floor.teardown(pod)
    t2 = time.perf_counter()
    ms = 1000
    return ((ran - t0) * ms, (made - ran) * ms, (t1 - made) * ms, (t1 - t0) * ms, (t2 - t1) * ms)


async def main(rounds: int) -> None:
    crid: list[Sample] = []
    floor_samples: list[Sample] = []
    loads = [load_average()]
    async with bench_daemon() as bench:
        stub = bench.stub
        # A pod kept for the whole run: its config.json is the floor's template (its
        # hostname, hosts, resolv.conf and shm stay mounted for the floor's containers).
        keep = pod_config(bench.tmp, bench.parent, -1)
        kept = await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=keep))
        keep_id = kept.pod_sandbox_id
        template, lowers = await template_config(bench, keep_id, keep)
        floor = PodFloor(
            container=ContainerFloor.of(bench.ctx, bench.tmp / "floor"),
            cni=CniFloor(bench.conflist),
            template=template,
            lowers=lowers,
            work=bench.tmp / "floor",
            parent=bench.parent,
        )
        await crid_cycle(bench, -2)  # warm-up: caches, first CNI run
        await asyncio.to_thread(floor_cycle, floor, -2)
        for index in range(rounds):
            if index % 2:
                crid.append(await crid_cycle(bench, index))
                floor_samples.append(await asyncio.to_thread(floor_cycle, floor, index))
            else:
                floor_samples.append(await asyncio.to_thread(floor_cycle, floor, index))
                crid.append(await crid_cycle(bench, index))
        loads.append(load_average())
        await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=keep_id))
        await stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=keep_id))
    print(f"rounds: {rounds}; load average before / after: {loads[0]} / {loads[1]}")
    print(f"{'median (p90) ms':<22}{'crid':>16}{'floor':>16}{'ratio':>8}")
    labels = ("Run", "Create", "Start", "start path", "teardown")
    for column, label in enumerate(labels):
        ours = [sample[column] for sample in crid]
        theirs = [sample[column] for sample in floor_samples]
        (m1, p1, _), (m2, p2, _) = summary(ours), summary(theirs)
        print(f"{label:<22}{m1:>8.1f} ({p1:5.1f}){m2:>8.1f} ({p2:5.1f}){m1 / m2:>8.2f}")
    per_round = [c[3] / f[3] for c, f in zip(crid, floor_samples, strict=True)]
    print(
        f"start path ÷ floor, per round: median {statistics.median(per_round):.2f}"
        f" (target <= 1.3); teardown ÷ floor: "
        f"{statistics.median(c[4] / f[4] for c, f in zip(crid, floor_samples, strict=True)):.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=20)
    args = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("Linux only")
    asyncio.run(main(args.rounds))
