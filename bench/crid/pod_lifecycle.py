"""A whole pod through crid's CRI socket: start path and teardown, medians.

Start: RunPodSandbox + CreateContainer + StartContainer (a busybox ``sleep``), with a CNI
bridge network (bridge + host-local + portmap, no masquerading, a random 10.x subnet).
Teardown: StopPodSandbox + RemovePodSandbox. Everything runs against an in-process
Daemon on a socket in a temporary directory, over a real gRPC channel.
Targets: start <= 120 ms, teardown <= 95 ms (the measured floor without any daemon is
about 91 ms and 71 ms). Run as root: ``uv run python bench/crid/pod_lifecycle.py [-n N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.config import load_config
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


async def cycle(
    stub: api_pb2_grpc.RuntimeServiceStub, tmp: Path, parent: str, index: int
) -> tuple[float, float, float, float, float]:
    """Milliseconds of: the start path, the teardown, and Run, Create, Start alone."""
    pod = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=f"bench-{index}", uid=f"u{index}", namespace="b"),
        hostname="bench",
        log_directory=str(tmp / "logs" / str(index)),
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{parent}/pod{index}"),
    )
    container = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="sleep"),
        image=api_pb2.ImageSpec(image=IMAGE),
        command=["sleep", "600"],
        log_path="sleep.log",
    )
    # What the kubelet sends by default: a PID namespace per container.
    pod.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    container.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    t0 = time.perf_counter()
    pod_id = (await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))).pod_sandbox_id
    ran = time.perf_counter()
    created = await stub.CreateContainer(
        api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=container, sandbox_config=pod)
    )
    made = time.perf_counter()
    await stub.StartContainer(api_pb2.StartContainerRequest(container_id=created.container_id))
    t1 = time.perf_counter()
    await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    await stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    t2 = time.perf_counter()
    return (
        (t1 - t0) * 1000,
        (t2 - t1) * 1000,
        (ran - t0) * 1000,
        (made - ran) * 1000,
        (t1 - made) * 1000,
    )


async def main(rounds: int) -> None:
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
            f'[crid.nri]\nsocket_path = "{tmp}/run/nri.sock"\n'
            f'[crid.runtime]\nnamespaces_dir = "{tmp}/run/ns"\n'
            f'container_exits_dir = "{tmp}/run/exits"\n'
        )
        daemon = Daemon(load_config(config_file))
        await daemon.start()
        try:
            assert daemon.context is not None
            await asyncio.to_thread(
                load_built, daemon.context.store.store, busybox_image(), [IMAGE]
            )
            async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
                stub = api_pb2_grpc.RuntimeServiceStub(channel)
                await cycle(stub, tmp, parent, -1)  # warm-up: caches, first CNI run
                samples = [await cycle(stub, tmp, parent, index) for index in range(rounds)]
        finally:
            await daemon.stop(grace=0)
            delete_link(bridge)
            remove_iptables_rules_mentioning(name)
            Hierarchies.detect().remove(parent)
    starts, teardowns, runs, creates, begins = (
        list(column) for column in zip(*samples, strict=True)
    )
    start_median, teardown_median = statistics.median(starts), statistics.median(teardowns)
    print(f"rounds: {rounds}")
    print(f"start    (Run+Create+Start):  median {start_median:6.1f} ms  (target <= 120)")
    print(f"teardown (Stop+Remove pod):   median {teardown_median:6.1f} ms  (target <= 95)")
    print(
        f"  of which RunPodSandbox {statistics.median(runs):.1f}, CreateContainer"
        f" {statistics.median(creates):.1f}, StartContainer {statistics.median(begins):.1f} ms"
    )
    print(f"start    min/max: {min(starts):.1f} / {max(starts):.1f} ms")
    print(f"teardown min/max: {min(teardowns):.1f} / {max(teardowns):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rounds", type=int, default=20)
    args = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("Linux only")
    asyncio.run(main(args.rounds))
