"""CreateContainer through crid's CRI socket versus conmon→runc create without any daemon.

Side by side in one run, interleaved round by round so both see the same machine load:
- floor: a plain thread starts conmon (sync and start pipes, as crid does) on a bundle
  whose config.json is the one crid generated for the same container, with a root
  filesystem mounted beforehand (untimed), and waits for conmon's pid report;
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
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.config import load_config
from crid.context import Context
from crid.oci import Conmon, ConmonOptions, OCIRuntime
from crid.server import Daemon
from ociimage.testing import busybox_image
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)
from ocistore.testing import load_built

IMAGE = "crid-bench/busybox:latest"


def pod_config(tmp: Path, parent: str, index: int) -> api_pb2.PodSandboxConfig:
    pod = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=f"bench-{index}", uid=f"u{index}", namespace="b"),
        hostname="bench",
        log_directory=str(tmp / "logs" / str(index)),
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{parent}/pod{index}"),
    )
    pod.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    return pod


def container_config(attempt: int) -> api_pb2.ContainerConfig:
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="sleep", attempt=attempt),
        image=api_pb2.ImageSpec(image=IMAGE),
        command=["sleep", "600"],
        log_path=f"sleep_{attempt}.log",
    )
    config.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    return config


@dataclass
class Floor:
    """conmon→runc create with no daemon, on bundles crid's own config.json describes."""

    ctx: Context
    template: dict[str, object]
    work: Path
    cgroup_parent: str

    def __post_init__(self) -> None:
        handler = self.ctx.handler()
        self.runtime = OCIRuntime(
            name="runc", binary=handler.runtime.binary, root=self.work / "runc"
        )
        self.conmon = Conmon(binary=handler.conmon.binary, runtime=self.runtime)

    def prepare(self) -> ConmonOptions:
        """An untimed rootfs and bundle for one floor container."""
        cid = secrets.token_hex(32)
        store = self.ctx.store.store
        image = self.ctx.store.store.image(IMAGE)
        store.create_container(cid, image.id)
        rootfs = store.mount_container(cid)
        bundle = self.work / "bundles" / cid
        bundle.mkdir(parents=True)
        config = json.loads(json.dumps(self.template))
        config["root"]["path"] = str(rootfs)
        config["linux"]["cgroupsPath"] = f"{self.cgroup_parent}/floor-{cid[:12]}"
        (bundle / "config.json").write_text(json.dumps(config))
        return ConmonOptions(
            container_id=cid,
            name=cid,
            bundle=bundle,
            log_path=self.work / "logs" / f"{cid}.log",
            exit_dir=self.work / "exits",
            socket_dir=self.work / "attach",
        )

    def create(self, options: ConmonOptions) -> float:
        """Time conmon's create as a bare program would run it (milliseconds)."""
        for directory in (options.exit_dir, options.socket_dir, options.log_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        sync_read, sync_write = os.pipe()
        start_read, start_write = os.pipe()
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        env |= {"_OCI_SYNCPIPE": str(sync_write), "_OCI_STARTPIPE": str(start_read)}
        proc = subprocess.Popen(
            self.conmon.argv(options),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=options.bundle,
            env=env,
            pass_fds=(sync_write, start_read),
            start_new_session=True,
        )
        os.close(sync_write)
        os.close(start_read)
        os.write(start_write, b"\0")
        os.close(start_write)
        with os.fdopen(sync_read, "rb") as reply:
            message = reply.readline()
        proc.wait()
        elapsed = (time.perf_counter() - t0) * 1000
        if json.loads(message)["data"] <= 0:
            raise RuntimeError(f"floor create failed: {message!r}")
        return elapsed

    def remove(self, options: ConmonOptions) -> None:
        subprocess.run(
            [str(self.runtime.binary), f"--root={self.runtime.root}", "delete", "--force",
             options.container_id],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 5
        while not options.exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.ctx.store.store.remove_container(options.container_id)
        shutil.rmtree(options.bundle, ignore_errors=True)


def summary(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90, ordered[-1]


def parallel_floor(floor: Floor, count: int) -> list[float]:
    bundles = [floor.prepare() for _ in range(count)]
    results: list[float] = [0.0] * count
    barrier = threading.Barrier(count)

    def one(i: int) -> None:
        barrier.wait()
        results[i] = floor.create(bundles[i])

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
    parent = f"crid-bench-{secrets.token_hex(3)}"
    name, bridge = f"crid-bench-{secrets.token_hex(3)}", random_bridge_name()
    with tempfile.TemporaryDirectory(prefix="crid-bench-") as directory:
        tmp = Path(directory)
        (tmp / "net.d").mkdir()
        conf = bridge_network(
            name=name, bridge=bridge, subnet=random_test_subnet(), data_dir=tmp / "ipam"
        )
        (tmp / "net.d" / "10-bench.conflist").write_text(json.dumps(conf))
        config_file = tmp / "crid.toml"
        config_file.write_text(
            f'[crid]\nroot = "{tmp}/root"\nrunroot = "{tmp}/run"\n'
            f'[crid.api]\nlisten = "{tmp}/run/crid.sock"\n'
            f'[crid.network]\nnetwork_dir = "{tmp}/net.d"\n'
            f'[crid.runtime]\nnamespaces_dir = "{tmp}/run/ns"\n'
            f'container_exits_dir = "{tmp}/run/exits"\n'
            f'[crid.nri]\nsocket_path = "{tmp}/run/nri.sock"\n'
        )
        daemon = Daemon(load_config(config_file))
        await daemon.start()
        serial_crid: list[float] = []
        serial_floor: list[float] = []
        par_crid: list[float] = []
        par_floor: list[float] = []
        serial_cpu: list[float] = []
        mixed: list[float] = []
        try:
            ctx = daemon.context
            assert ctx is not None
            await asyncio.to_thread(load_built, ctx.store.store, busybox_image(), [IMAGE])
            async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
                stub = api_pb2_grpc.RuntimeServiceStub(channel)
                pods = [pod_config(tmp, parent, i) for i in range(parallel)]
                pod_ids = []
                for pod in pods:
                    reply = await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
                    pod_ids.append(reply.pod_sandbox_id)
                # Warm-up (caches, first conmon), and the config.json the floor reuses.
                warm, _ = await timed_create(stub, pod_ids[0], pods[0], 0)
                record = ctx.registry.container(warm)
                template = json.loads(
                    await asyncio.to_thread(Path(record.bundle, "config.json").read_text)
                )
                await remove_all(stub, [warm])
                floor = Floor(
                    ctx=ctx, template=template, work=tmp / "floor",
                    cgroup_parent=f"/{parent}/pod0",
                )  # fmt: skip
                attempt = 1
                for _ in range(rounds):
                    options = await asyncio.to_thread(floor.prepare)
                    serial_floor.append(await asyncio.to_thread(floor.create, options))
                    await asyncio.to_thread(floor.remove, options)
                    cpu = time.process_time()
                    cid, ms = await timed_create(stub, pod_ids[0], pods[0], attempt)
                    serial_cpu.append((time.process_time() - cpu) * 1000)
                    attempt += 1
                    serial_crid.append(ms)
                    await remove_all(stub, [cid])
                for _ in range(max(1, rounds // 4)):
                    par_floor += await asyncio.to_thread(parallel_floor, floor, parallel)
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
                    *(
                        lifecycle_worker(stub, tmp, parent, w, max(1, rounds // 4))
                        for w in range(parallel)
                    )
                ):
                    mixed += worker_timings
                for pod_id in pod_ids:
                    await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
                    await stub.RemovePodSandbox(
                        api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id)
                    )
        finally:
            await daemon.stop(grace=0)
            delete_link(bridge)
            remove_iptables_rules_mentioning(name)
            Hierarchies.detect().remove(parent)
    print(f"rounds: {rounds} serial, {max(1, rounds // 4)} x {parallel} parallel")
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
