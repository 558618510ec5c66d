"""Resources exactly as the kubelet sends them, and failed creates that leave nothing.

The kubelet (pkg/kubelet/kuberuntime) sends, for every container: CPU shares (at least
2), CFS quota and period, the memory limit, an OOM score adjustment, a hugepage limit
(0 unless requested) for every page size in /sys/kernel/mm/hugepages, the memory+swap
limit when swap is accounted (cgroup v1: equal to the memory limit), and on cgroup v2
``unified`` keys (``memory.oom.group``, ``memory.swap.max``). A node need not have every
controller: here the hugetlb controller is known to the kernel but mounted nowhere, so
crid must leave the hugepage limits out or runc refuses the container.

A real Daemon, runc under conmon, a CNI bridge; each test removes what it made.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.cgroups import Hierarchies, detect_controllers
from ocispec.generate import CgroupControllers

from ._lifecycle import (
    Env,
    container_config,
    crid_env,
    exec_sync,
    pod_config,
    run_pod,
    start_container,
    status,
    wait_for_text,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

MEMORY = 96 * 1024 * 1024


def hugepage_sizes() -> list[str]:
    """The page sizes as the kubelet names them (``hugepages-2048kB`` -> ``2MB``)."""
    sizes = []
    for entry in sorted(Path("/sys/kernel/mm/hugepages").iterdir()):
        kib = int(entry.name.removeprefix("hugepages-").removesuffix("kB"))
        for unit, scale in (("GB", 1024 * 1024), ("MB", 1024), ("KB", 1)):
            if kib % scale == 0:
                sizes.append(f"{kib // scale}{unit}")
                break
    return sizes


def kubelet_resources(controllers: CgroupControllers) -> api_pb2.LinuxContainerResources:
    """A Burstable container (requests 100m / 64Mi, limits 500m / 96Mi) as the kubelet
    with default settings describes it."""
    resources = api_pb2.LinuxContainerResources(
        cpu_shares=102,  # MilliCPUToShares(100)
        cpu_quota=50000,  # milliCPUToQuota(500, 100000)
        cpu_period=100000,
        memory_limit_in_bytes=MEMORY,
        oom_score_adj=985,
        hugepage_limits=[
            api_pb2.HugepageLimit(page_size=size, limit=0) for size in hugepage_sizes()
        ],
    )
    if controllers.unified:
        resources.unified["memory.oom.group"] = "1"
        if controllers.swap:
            resources.unified["memory.swap.max"] = "0"
    elif controllers.swap:
        resources.memory_swap_limit_in_bytes = MEMORY  # ConfigureNoSwap on v1
    return resources


# The kubelet's default masked and read-only /proc and /sys paths (procMount Default).
MASKED = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def kubelet_container(
    env: Env, resources: api_pb2.LinuxContainerResources
) -> api_pb2.ContainerConfig:
    """The rest of a kubelet ContainerConfig: its annotations and labels, the termination
    message mount, RuntimeDefault seccomp, the default masked/read-only paths."""
    config = container_config("app", ["echo up; exec sleep 60"], resources=resources)
    config.annotations.update(
        {
            "io.kubernetes.container.hash": "3c4a1e5b",
            "io.kubernetes.container.restartCount": "0",
            "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
            "io.kubernetes.container.terminationMessagePolicy": "File",
            "io.kubernetes.pod.terminationGracePeriod": "30",
        }
    )
    config.labels.update(
        {
            "io.kubernetes.container.name": "app",
            "io.kubernetes.pod.name": "kube",
            "io.kubernetes.pod.namespace": "default",
            "io.kubernetes.pod.uid": "uid-kube",
        }
    )
    config.envs.append(api_pb2.KeyValue(key="KUBERNETES_SERVICE_HOST", value=b"10.96.0.1"))
    termination = env.tmp / "termination-log"
    termination.touch()
    config.mounts.append(
        api_pb2.Mount(container_path="/dev/termination-log", host_path=str(termination))
    )
    sc = config.linux.security_context
    sc.seccomp.profile_type = api_pb2.SecurityProfile.RuntimeDefault
    sc.masked_paths.extend(MASKED)
    sc.readonly_paths.extend(READONLY)
    return config


def pod_cgroups(env: Env, pod_name: str) -> list[Path]:
    """The pod's cgroup directory in every mounted hierarchy."""
    hierarchies = Hierarchies.detect()
    return [root / env.cgroup_parent / pod_name for root in hierarchies.roots()]


def mounts_mentioning(text: str) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if text in line]


async def test_container_created_as_the_kubelet_does_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    controllers = detect_controllers(Hierarchies.detect())
    resources = kubelet_resources(controllers)
    assert len(resources.hugepage_limits) >= 1
    caplog.set_level(logging.DEBUG, logger="crid")
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "kube")
        pod_id = await run_pod(env, pod)
        config = kubelet_container(env, resources)
        cid = await start_container(env, pod_id, pod, config)
        await wait_for_text(env.tmp / "logs" / "kube" / "app.log", "stdout F up")
        assert (await status(env, cid)).state == api_pb2.CONTAINER_RUNNING
        out = await exec_sync(env, cid, ["cat", "/proc/self/oom_score_adj"])
        assert out.stdout == b"985\n"
        out = await exec_sync(env, cid, ["sh", "-c", "echo bye > /dev/termination-log"])
        assert out.exit_code == 0
        assert (env.tmp / "termination-log").read_text() == "bye\n"

        # What reached runc: hugepage limits only with a hugetlb controller.
        spec = json.loads((env.tmp / "run" / "containers" / cid / "config.json").read_text())
        sent = spec["linux"]["resources"]
        assert ("hugepageLimits" in sent) == controllers.has("hugetlb")
        if not controllers.has("hugetlb"):
            assert any(
                cid in r.getMessage() and "hugepageLimits" in r.getMessage() for r in caplog.records
            )
        # And the limits that can be set are in force.
        cgroup = f"{env.cgroup_parent}/kube/crid-{cid}"
        if controllers.unified:
            root = Hierarchies.detect().v2
            assert root is not None
            assert (root / cgroup / "memory.max").read_text().strip() == str(MEMORY)
            assert (root / cgroup / "cpu.max").read_text().split() == ["50000", "100000"]
        else:
            memory = Path("/sys/fs/cgroup/memory", cgroup)
            assert (memory / "memory.limit_in_bytes").read_text().strip() == str(MEMORY)
            if controllers.swap:
                memsw = (memory / "memory.memsw.limit_in_bytes").read_text().strip()
                assert memsw == str(MEMORY)
            cpu = Path("/sys/fs/cgroup/cpu", cgroup)
            assert (cpu / "cpu.shares").read_text().strip() == "102"
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"

        # The kubelet resizes with the same shape (generateContainerResources).
        resized = kubelet_resources(controllers)
        resized.memory_limit_in_bytes = 2 * MEMORY
        if resized.memory_swap_limit_in_bytes:
            resized.memory_swap_limit_in_bytes = 2 * MEMORY
        await env.stub.UpdateContainerResources(
            api_pb2.UpdateContainerResourcesRequest(container_id=cid, linux=resized)
        )
        limit_file = (
            Path(str(Hierarchies.detect().v2), cgroup, "memory.max")
            if controllers.unified
            else Path("/sys/fs/cgroup/memory", cgroup, "memory.limit_in_bytes")
        )
        assert limit_file.read_text().strip() == str(2 * MEMORY)

        # A node without a cpuset controller (simulated: crid is told it has none): a
        # cpuset runc would refuse is left out of the update instead of failing it.
        ctx = env.lifecycle.ctx
        ctx.controllers = dataclasses.replace(
            controllers, available=controllers.available - {"cpuset"}
        )
        cpuset = kubelet_resources(controllers)
        cpuset.cpuset_cpus = "1023"
        await env.stub.UpdateContainerResources(
            api_pb2.UpdateContainerResourcesRequest(container_id=cid, linux=cpuset)
        )
        assert any(
            cid in r.getMessage() and "cpu.cpus (no cpuset controller)" in r.getMessage()
            for r in caplog.records
        )
        ctx.controllers = controllers
        with pytest.raises(grpc.aio.AioRpcError):  # what runc says when it gets there
            await env.stub.UpdateContainerResources(
                api_pb2.UpdateContainerResourcesRequest(container_id=cid, linux=cpuset)
            )
        assert (await status(env, cid)).state == api_pb2.CONTAINER_RUNNING
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert [p for p in pod_cgroups(env, "kube") if p.exists()] == []


def leftovers(env: Env, pod_name: str) -> dict[str, list[str]]:
    """Everything a container of ``pod_name`` could leave behind, by kind."""
    run = env.tmp / "run"
    ctx = env.lifecycle.ctx

    def names(directory: Path) -> list[str]:
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    return {
        "logs": names(env.tmp / "logs" / pod_name),
        "records": [c.id for c in ctx.registry.containers()],
        "bundles": names(run / "containers"),
        "exit files": names(ctx.layout.exits),
        "attach links": names(ctx.layout.attach),
        "store containers": [c.id for c in ctx.store.store.list_containers()],
        "mounts": mounts_mentioning(str(env.tmp / "root")),
        "cgroups": [
            str(child)
            for directory in pod_cgroups(env, pod_name)
            if directory.is_dir()
            for child in directory.iterdir()
            if child.is_dir()
        ],
    }


NOTHING: dict[str, list[str]] = {
    "logs": [],
    "records": [],
    "bundles": [],
    "exit files": [],
    "attach links": [],
    "store containers": [],
    "mounts": [],
    "cgroups": [],
}


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"command": ["/no/such/command"]}, id="missing-command"),
        pytest.param({"cpuset_cpus": "1023"}, id="cpuset-runc-rejects"),
    ],
)
async def test_failed_create_leaves_nothing_and_the_name_is_free(
    tmp_path: Path, broken: dict[str, object]
) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "fail")
        pod_id = await run_pod(env, pod)
        config = container_config("app", ["echo up; exec sleep 60"])
        if "command" in broken:
            config.command[:] = broken["command"]  # type: ignore[index]
            del config.args[:]
        else:
            config.linux.resources.cpuset_cpus = str(broken["cpuset_cpus"])
        for _ in range(2):  # as the kubelet retries
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await env.stub.CreateContainer(
                    api_pb2.CreateContainerRequest(
                        pod_sandbox_id=pod_id, config=config, sandbox_config=pod
                    )
                )
            assert info.value.code() != grpc.StatusCode.OK
            assert leftovers(env, "fail") == NOTHING
        listed = await env.stub.ListContainers(api_pb2.ListContainersRequest())
        assert list(listed.containers) == []

        # The same name (and attempt, hence log file) works once the config is good.
        good = container_config("app", ["echo up; exec sleep 60"])
        cid = await start_container(env, pod_id, pod, good)
        await wait_for_text(env.tmp / "logs" / "fail" / "app.log", "stdout F up")
        assert (await status(env, cid)).state == api_pb2.CONTAINER_RUNNING
        assert leftovers(env, "fail")["attach links"] == [cid]

        # RemoveContainer takes everything but the log (the kubelet removes logs).
        await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid))
        assert leftovers(env, "fail") == {**NOTHING, "logs": ["app.log"]}
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert [p for p in pod_cgroups(env, "fail") if p.exists()] == []
