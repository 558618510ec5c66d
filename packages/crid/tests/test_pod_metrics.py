"""ListMetricDescriptors and ListPodSandboxMetrics against a real pod: RunPodSandbox on a
CNI bridge, CreateContainer with critest's kind of resources, runc under conmon, cgroup v1.

The container burns CPU under a CFS quota, fills page cache, does direct IO on its
writable layer, holds a listening socket and serves a request from the host over the pod
network; every cAdvisor metric critest expects must then carry a plausible value read
from the real cgroup files, /proc, the pod's interfaces and the rootfs file system.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.server import Daemon
from crid.stats import device_name

from ._lifecycle import (
    Env,
    container_config,
    crid_env,
    exec_sync,
    pod_config,
    run_pod,
    start_container,
)
from ._observe import container, pod
from .conftest import make_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

MiB = 1 << 20

#: The names critest's "listing pod sandbox metrics" expects (its optional ones included).
CRITEST_NAMES = {
    "container_blkio_device_usage_total",
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    "container_cpu_cfs_throttled_seconds_total",
    "container_cpu_system_seconds_total",
    "container_cpu_user_seconds_total",
    "container_file_descriptors",
    "container_fs_inodes_free",
    "container_fs_inodes_total",
    "container_fs_limit_bytes",
    "container_fs_reads_bytes_total",
    "container_fs_reads_total",
    "container_fs_writes_bytes_total",
    "container_fs_writes_total",
    "container_last_seen",
    "container_memory_cache",
    "container_memory_failcnt",
    "container_memory_kernel_usage",
    "container_memory_mapped_file",
    "container_memory_max_usage_bytes",
    "container_memory_swap",
    "container_network_receive_bytes_total",
    "container_network_receive_errors_total",
    "container_network_receive_packets_dropped_total",
    "container_network_receive_packets_total",
    "container_network_transmit_bytes_total",
    "container_network_transmit_errors_total",
    "container_network_transmit_packets_dropped_total",
    "container_network_transmit_packets_total",
    "container_oom_events_total",
    "container_sockets",
    "container_spec_cpu_period",
    "container_spec_cpu_shares",
    "container_spec_memory_swap_limit_bytes",
    "container_start_time_seconds",
    "container_threads",
    "container_threads_max",
}

# Under a CFS quota of 0.4 core the loops run until the test has seen a second of CPU.
WORKLOAD = (
    "dd if=/dev/zero of=/tmp/cached bs=1M count=8 2>/dev/null;"
    " dd if=/dev/zero of=/tmp/direct bs=1M count=4 oflag=direct 2>/dev/null;"
    " dd if=/tmp/direct of=/dev/null bs=1M iflag=direct 2>/dev/null;"
    " echo hello > /tmp/index.html; busybox httpd -p 8080 -h /tmp;"
    " mkdir /tmp/bin; cp /bin/busybox /tmp/bin/busybox;"  # pages charged to the container
    # two loops: together they want more than the quota even on a busy machine
    " (while [ ! -e /tmp/stop ]; do :; done) & (while [ ! -e /tmp/stop ]; do :; done) &"
    " exec /tmp/bin/busybox sleep 120"
)


def series(
    metrics: Iterable[api_pb2.Metric], keys: dict[str, list[str]]
) -> dict[str, list[tuple[dict[str, str], int]]]:
    """Each metric name's series as (labels by key, value); label counts checked."""
    found: dict[str, list[tuple[dict[str, str], int]]] = {}
    for metric in metrics:
        assert len(metric.label_values) == len(keys[metric.name]), metric.name
        labels = dict(zip(keys[metric.name], metric.label_values, strict=True))
        assert metric.HasField("value"), metric.name
        found.setdefault(metric.name, []).append((labels, metric.value.value))
    return found


def one(found: dict[str, list[tuple[dict[str, str], int]]], name: str, **labels: str) -> int:
    """The value of the single series of ``name`` whose labels include ``labels``."""
    matches = [v for ls, v in found.get(name, []) if labels.items() <= ls.items()]
    assert len(matches) == 1, (name, labels, found.get(name))
    return matches[0]


async def pod_metrics(env: Env, pod_id: str) -> api_pb2.PodSandboxMetrics:
    reply = await env.stub.ListPodSandboxMetrics(api_pb2.ListPodSandboxMetricsRequest())
    by_pod = {m.pod_sandbox_id: m for m in reply.pod_metrics}
    return by_pod[pod_id]


def fetch(address: str) -> bytes:
    """GET /index.html from the pod's httpd, once it listens (after the dd runs)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection((address, 8080), timeout=5) as conn:
                conn.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                return data
        except ConnectionRefusedError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


async def test_every_critest_metric_has_real_values(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        descriptors = (
            await env.stub.ListMetricDescriptors(api_pb2.ListMetricDescriptorsRequest())
        ).descriptors
        keys = {d.name: list(d.label_keys) for d in descriptors}
        assert set(keys) >= CRITEST_NAMES
        for d in descriptors:
            assert d.help
            assert d.label_keys[:6] == ["container", "id", "image", "name", "namespace", "pod"]
        assert keys["container_network_receive_bytes_total"][6:] == ["interface"]
        assert keys["container_blkio_device_usage_total"][6:] == [
            "device",
            "major",
            "minor",
            "operation",
        ]
        assert keys["container_fs_limit_bytes"][6:] == ["device"]
        assert keys["container_fs_writes_bytes_total"][6:] == ["device"]
        assert keys["container_memory_failures_total"][6:] == ["failure_type", "scope"]

        config = pod_config(env, "metrics")
        pod_id = await run_pod(env, config)
        assert env.daemon.context is not None
        root = env.daemon.context.store.store.root
        st_dev = root.stat().st_dev
        device = device_name(os.major(st_dev), os.minor(st_dev))
        # This kernel counts v1 blkio only below a throttle rule (as a node's IO limits
        # would set): a limit no test reaches, on the pod cgroup the container inherits.
        blkio = env.daemon.context.hierarchies.controller_path("blkio", config.linux.cgroup_parent)
        if blkio is not None and (blkio / "blkio.throttle.read_bps_device").exists():
            for name in ("read_bps_device", "write_bps_device"):
                rule = f"{os.major(st_dev)}:{os.minor(st_dev)} {1 << 40}"
                (blkio / f"blkio.throttle.{name}").write_text(rule)
        resources = api_pb2.LinuxContainerResources(
            cpu_period=100_000,
            cpu_quota=40_000,
            cpu_shares=512,
            memory_limit_in_bytes=64 * MiB,
            memory_swap_limit_in_bytes=128 * MiB,
        )
        started = time.time()
        cid = await start_container(
            env, pod_id, config, container_config("work", [WORKLOAD], resources=resources)
        )
        status = (
            await env.stub.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
        ).status
        assert b"hello" in await asyncio.to_thread(fetch, status.network.ip)

        # Poll as the kubelet does until a whole second of user CPU time shows (the CRI's
        # values are integers: seconds are whole); the cache refreshes meanwhile.
        deadline = time.monotonic() + 60
        while True:
            found = await pod_metrics(env, pod_id)
            [ctr] = found.container_metrics
            values = series(ctr.metrics, keys)
            cpu = values.get("container_cpu_user_seconds_total", [])
            if cpu and cpu[0][1] >= 1:
                break
            assert time.monotonic() < deadline, cpu
            await asyncio.sleep(0.3)
        await exec_sync(env, cid, ["touch", "/tmp/stop"])
        pod_level = series(found.metrics, keys)
        assert ctr.container_id == cid
        names = set(values) | set(pod_level)
        assert names >= CRITEST_NAMES, CRITEST_NAMES - names

        # No two series of one name share their labels (Prometheus refuses duplicates).
        everything = [*found.metrics, *ctr.metrics]
        identities = [(m.name, tuple(m.label_values)) for m in everything]
        assert len(identities) == len(set(identities))

        labels, _ = values["container_memory_usage_bytes"][0]
        assert labels["container"] == "work"
        assert labels["name"] == cid
        assert labels["pod"] == "metrics"
        assert labels["namespace"] == "default"
        assert labels["image"].endswith("busybox:latest")
        assert labels["id"].endswith(cid)
        [(pod_labels, _)] = pod_level["container_memory_usage_bytes"]
        assert pod_labels["container"] == ""
        assert pod_labels["name"] == ""  # as cAdvisor's for a pod cgroup
        assert pod_labels["id"] == f"/{env.cgroup_parent}/metrics"

        now = time.time()
        assert now - 60 < one(values, "container_last_seen") <= now
        assert started - 2 <= one(values, "container_start_time_seconds") <= now
        assert one(pod_level, "container_start_time_seconds") <= one(
            values, "container_start_time_seconds"
        )

        # cpu: a busy loop under a 40% quota is throttled.
        assert one(values, "container_cpu_usage_seconds_total", cpu="total") >= 1
        assert one(values, "container_cpu_user_seconds_total") >= 1
        assert one(values, "container_cpu_system_seconds_total") >= 0
        assert one(values, "container_cpu_cfs_periods_total") > 10
        assert one(values, "container_cpu_cfs_throttled_periods_total") > 0
        assert one(values, "container_cpu_cfs_throttled_seconds_total") >= 0
        assert one(pod_level, "container_cpu_usage_seconds_total", cpu="total") >= 1

        # memory: 8 MiB written through the page cache.
        assert one(values, "container_memory_cache") >= 8 * MiB
        usage = one(values, "container_memory_usage_bytes")
        assert usage >= 8 * MiB
        assert one(values, "container_memory_max_usage_bytes") >= usage
        assert one(values, "container_memory_working_set_bytes") <= usage
        assert one(values, "container_memory_rss") > 0
        assert one(values, "container_memory_kernel_usage") > 0
        assert one(values, "container_memory_mapped_file") > 0  # /tmp/bin/busybox, run by sleep
        assert one(values, "container_memory_swap") >= 0
        assert one(values, "container_memory_failcnt") >= 0
        faults = "container_memory_failures_total"
        assert one(values, faults, failure_type="pgfault", scope="container") > 0
        assert one(values, faults, failure_type="pgfault", scope="hierarchy") > 0
        assert one(values, faults, failure_type="pgmajfault", scope="container") >= 0
        assert one(values, "container_oom_events_total") == 0
        assert one(pod_level, "container_memory_cache") >= 8 * MiB

        # network (pod level): the host's request and the answer went over eth0.
        assert "container_network_receive_bytes_total" not in values
        assert one(pod_level, "container_network_receive_bytes_total", interface="eth0") > 0
        assert one(pod_level, "container_network_transmit_bytes_total", interface="eth0") > 5
        assert one(pod_level, "container_network_receive_packets_total", interface="eth0") >= 3
        assert one(pod_level, "container_network_transmit_packets_total", interface="eth0") >= 3
        for name in (
            "container_network_receive_errors_total",
            "container_network_transmit_errors_total",
            "container_network_receive_packets_dropped_total",
            "container_network_transmit_packets_dropped_total",
        ):
            assert one(pod_level, name, interface="eth0") >= 0
        received = pod_level["container_network_receive_bytes_total"]
        assert "lo" not in {ls["interface"] for ls, _ in received}

        # disk: the file system of the writable layer, by device name.
        vfs = os.statvfs(root)
        assert one(values, "container_fs_limit_bytes", device=device) == vfs.f_blocks * vfs.f_frsize
        inodes = one(values, "container_fs_inodes_total", device=device)
        assert inodes == vfs.f_files
        assert 0 < one(values, "container_fs_inodes_free", device=device) < inodes
        assert one(values, "container_fs_usage_bytes", device=device) >= 12 * MiB

        # diskIO: 4 MiB written and read back with O_DIRECT, charged to the container.
        assert one(values, "container_fs_writes_bytes_total", device=device) >= 4 * MiB
        assert one(values, "container_fs_reads_bytes_total", device=device) >= 4 * MiB
        assert one(values, "container_fs_writes_total", device=device) >= 1
        assert one(values, "container_fs_reads_total", device=device) >= 1
        write_bytes = one(
            values,
            "container_blkio_device_usage_total",
            device=device,
            major=str(os.major(st_dev)),
            minor=str(os.minor(st_dev)),
            operation="Write",
        )
        assert write_bytes >= 4 * MiB

        # process: sleep, httpd and the loops' shells; httpd's listening socket.
        assert one(values, "container_processes") >= 4
        assert one(values, "container_threads") >= one(values, "container_processes")
        assert one(values, "container_threads_max") == 0  # no pids limit
        assert one(values, "container_file_descriptors") >= 3
        assert one(values, "container_sockets") >= 1
        assert one(values, "container_ulimits_soft", ulimit="max_open_files") > 0
        assert one(pod_level, "container_processes") == one(values, "container_processes")

        # pressure: PSI of the container's cgroup in the (controller-less) cgroup2 tree.
        for resource in ("cpu", "memory", "io"):
            for kind in ("stalled", "waiting"):
                assert one(values, f"container_pressure_{resource}_{kind}_seconds_total") >= 0
                assert one(pod_level, f"container_pressure_{resource}_{kind}_seconds_total") >= 0

        # spec: what the CRI asked for, as the cgroup files hold it.
        assert one(values, "container_spec_cpu_period") == 100_000
        assert one(values, "container_spec_cpu_quota") == 40_000
        assert one(values, "container_spec_cpu_shares") == 512
        assert one(values, "container_spec_memory_limit_bytes") == 64 * MiB
        assert one(values, "container_spec_memory_swap_limit_bytes") == 128 * MiB
        assert one(values, "container_spec_memory_reservation_limit_bytes") == 0


async def test_included_pod_metrics_drops_excluded_groups(tmp_path: Path) -> None:
    _, config = make_config(tmp_path, '[crid.stats]\nincluded_pod_metrics = ["cpu", "spec"]\n')
    daemon = Daemon(config)
    await daemon.start()
    try:
        ctx = daemon.context
        assert ctx is not None
        async with (
            grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel,
            pod(ctx) as sandbox,
            container(ctx, sandbox, ["sleep", "60"]) as record,
        ):
            stub = api_pb2_grpc.RuntimeServiceStub(channel)
            descriptors = (
                await stub.ListMetricDescriptors(api_pb2.ListMetricDescriptorsRequest())
            ).descriptors
            listed = {d.name for d in descriptors}
            assert "container_cpu_user_seconds_total" in listed
            assert "container_spec_cpu_shares" in listed
            assert {"container_last_seen", "container_start_time_seconds"} <= listed
            excluded = ("container_memory_", "container_network_", "container_fs_", "container_thr")
            assert not {n for n in listed if n.startswith(excluded)}

            async def names() -> set[str]:
                reply = await stub.ListPodSandboxMetrics(api_pb2.ListPodSandboxMetricsRequest())
                [found] = [m for m in reply.pod_metrics if m.pod_sandbox_id == sandbox.id]
                [ctr] = found.container_metrics
                assert ctr.container_id == record.id
                return {m.name for m in [*found.metrics, *ctr.metrics]}

            got = await names()
            assert got <= listed
            assert "container_cpu_user_seconds_total" in got
            assert "container_cpu_cfs_periods_total" not in got  # no CFS quota: as cAdvisor
            assert "container_spec_cpu_shares" in got
            assert "container_memory_usage_bytes" not in got
            assert "container_processes" not in got
    finally:
        await daemon.stop(grace=0)
