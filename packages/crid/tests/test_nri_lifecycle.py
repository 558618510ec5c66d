"""NRI end to end: a real Daemon (runc, conmon, CNI) and test plugins running as their
own processes (``_nri_plugin.py``, built on crid's plugin side) over the real socket.

Modelled on cri-tools' NRI conformance specs: every lifecycle event reaches the plugins
in index order; RunPodSandbox and CreateContainer hide what they make while their hooks
run, fail cleanly on a hook error and allow a retry; StopPodSandbox stops the workload
first and keeps the pod visible; late plugins are synchronized without losing a
container; adjustments reach the OCI config; slow plugins are cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.cgroups import Hierarchies

from ._lifecycle import (
    Env,
    container_config,
    crid_env,
    exec_sync,
    pod_config,
    run_pod,
    start_container,
    wait_for_comm,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

PLUGIN = Path(__file__).with_name("_nri_plugin.py")


class Plugins:
    """Test plugin processes sharing one control directory and event log."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.control = env.tmp / "nri-control"
        self.control.mkdir(exist_ok=True)
        self.socket = env.tmp / "nri" / "nri.sock"
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    def behave(self, name: str, **behaviour: Any) -> None:
        (self.control / f"{name}.json").write_text(json.dumps(behaviour))

    def release(self, name: str, event: str) -> None:
        (self.control / f"release-{name}-{event}").touch()

    async def start(self, name: str, index: str, *, wait: bool = True, **behaviour: Any) -> None:
        self.behave(name, **behaviour)
        self.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PLUGIN),
            str(self.control),
            "--name",
            name,
            "--index",
            index,
            "--socket",
            str(self.socket),
        )
        if wait:
            await self.wait_for(name, "Ready")

    def events(self, plugin: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        path = self.control / "events.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines]
        return [
            e
            for e in found
            if (plugin is None or e["plugin"] == plugin) and (event is None or e["event"] == event)
        ]

    async def wait_for(
        self, plugin: str, event: str, timeout: float = 20.0, **fields: Any
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for found in self.events(plugin, event):
                if all(found.get(k) == v for k, v in fields.items()):
                    return found
            assert time.monotonic() < deadline, f"{plugin} never saw {event} {fields}"
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def nri_env(
    tmp: Path, nri_lines: str = "", runtime: str = ""
) -> AsyncIterator[tuple[Env, Plugins]]:
    async with crid_env(tmp, runtime, nri_lines=nri_lines) as env:
        plugins = Plugins(env)
        try:
            yield env, plugins
        finally:
            # Release every block so that cleanup never waits on a hook.
            for name in list(plugins.processes):
                for event in ("RunPodSandbox", "CreateContainer", "StopPodSandbox", "Synchronize"):
                    plugins.release(name, event)
            for pod in list(env.daemon.context.registry.sandboxes()) if env.daemon.context else []:
                with contextlib.suppress(Exception):
                    await env.lifecycle.pods.remove(pod.id)
            await plugins.stop()


def sleeper(name: str) -> api_pb2.ContainerConfig:
    # trap: PID 1 ends on SIGTERM (busybox sleep as PID 1 ignores it)
    return container_config(name, ["trap 'exit 0' TERM; while true; do sleep 0.1; done"])


async def list_pod_ids(env: Env) -> list[str]:
    reply = await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())
    return [p.id for p in reply.items]


async def list_container_ids(env: Env, pod_id: str = "") -> list[str]:
    request = api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(pod_sandbox_id=pod_id))
    reply = await env.stub.ListContainers(request)
    return [c.id for c in reply.containers]


# -- events -------------------------------------------------------------------------------

LIFECYCLE = [
    "RunPodSandbox",
    "CreateContainer",
    "PostCreateContainer",
    "StartContainer",
    "PostStartContainer",
    "UpdateContainer",
    "PostUpdateContainer",
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
]


async def test_every_event_reaches_plugins_in_index_order(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("late", "20")
        await plugins.start("early", "05")
        pod = pod_config(env, "ordered")
        pod_id = await run_pod(env, pod)
        ctr = await start_container(env, pod_id, pod, sleeper("app"))
        resources = api_pb2.LinuxContainerResources(memory_limit_in_bytes=64 << 20)
        await env.stub.UpdateContainerResources(
            api_pb2.UpdateContainerResourcesRequest(container_id=ctr, linux=resources)
        )
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=ctr, timeout=5))
        await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=ctr))
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        await plugins.wait_for("late", "RemovePodSandbox", pod=pod_id)

        for name in ("early", "late"):
            seen = [
                e["event"]
                for e in plugins.events(name)
                if e.get("pod") == pod_id and e["event"] in LIFECYCLE
            ]
            assert seen == LIFECYCLE, name
        update = plugins.events("early", "UpdateContainer")[0]
        assert update["container"] == ctr and update["memory"] == 64 << 20
        stop = plugins.events("late", "StopContainer")[0]
        assert stop["state"] == 4  # CONTAINER_STOPPED: the hook follows the exit
        # Index order: for each event, 05-early is called before 20-late answers.
        ordered = [(e["event"], e["plugin"]) for e in plugins.events() if e.get("pod") == pod_id]
        for event in LIFECYCLE:
            assert [p for ev, p in ordered if ev == event] == ["early", "late"], event


async def test_self_exits_are_reported_and_invalid_requests_send_nothing(
    tmp_path: Path,
) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("watcher", "00")
        pod = pod_config(env, "exits")
        pod_id = await run_pod(env, pod)
        failing = await start_container(env, pod_id, pod, container_config("fails", ["exit 1"]))
        stopped = await plugins.wait_for("watcher", "StopContainer", container=failing)
        assert plugins.events("watcher", "RemoveContainer") == []
        started = plugins.events("watcher", "StartContainer")[0]
        assert started["time"] < stopped["time"]

        baseline = len(plugins.events())
        unknown = "0" * 64
        invalid: list[Any] = [
            env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=unknown, config=sleeper("x"), sandbox_config=pod
                )
            ),
            env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id,
                    config=api_pb2.ContainerConfig(image=api_pb2.ImageSpec(image="x")),
                    sandbox_config=pod,
                )
            ),
            env.stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=api_pb2.PodSandboxConfig())),
            env.stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod)),  # a duplicate
            env.stub.StartContainer(api_pb2.StartContainerRequest(container_id=unknown)),
        ]
        for call in invalid:
            with pytest.raises(grpc.aio.AioRpcError):
                await call
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=unknown))
        await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=unknown))
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=unknown))
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=unknown))
        await asyncio.sleep(0.5)  # anything late would show up here
        assert plugins.events()[baseline:] == []


async def test_a_late_plugin_is_synchronized_and_misses_no_container(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        pod = pod_config(env, "sync")
        pod_id = await run_pod(env, pod)
        first = await start_container(env, pod_id, pod, sleeper("first"))
        # No plugin yet: crid listens, but the protocol and its host are not loaded.
        assert env.lifecycle.containers.nri.host is None
        assert plugins.socket.is_socket()

        await plugins.start("joiner", "10")
        host = env.lifecycle.containers.nri.host
        assert host is not None
        # The plugin says Ready once it has answered Synchronize; crid lists it once it
        # has read that answer, a moment later on a loaded machine.
        deadline = time.monotonic() + 10
        while [p.name for p in host.plugins] != ["joiner"]:
            assert time.monotonic() < deadline, [p.name for p in host.plugins]
            await asyncio.sleep(0.02)
        synced = plugins.events("joiner", "Synchronize")[0]
        assert pod_id in synced["pods"] and first in synced["containers"]

        # A second plugin whose Synchronize blocks while a container is being created.
        await plugins.start("blocker", "30", wait=False, block=["Synchronize"])
        await plugins.wait_for("blocker", "Synchronize")
        create = asyncio.create_task(start_container(env, pod_id, pod, sleeper("during")))
        await asyncio.sleep(0.5)  # the create is in flight while Synchronize blocks
        plugins.release("blocker", "Synchronize")
        await plugins.wait_for("blocker", "Ready")
        during = await create
        synced = plugins.events("blocker", "Synchronize")[0]
        created = [e["container"] for e in plugins.events("blocker", "CreateContainer")]
        assert during in synced["containers"] or during in created
        await plugins.wait_for("blocker", "StartContainer", container=during)


async def test_update_pod_sandbox_resources_goes_through_plugins(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        pod = pod_config(env, "resized")
        pod.linux.resources.CopyFrom(api_pb2.LinuxContainerResources(cpu_shares=256))
        pod.linux.overhead.CopyFrom(api_pb2.LinuxContainerResources(cpu_shares=10))
        pod_id = await run_pod(env, pod)
        await plugins.start("sizer", "10", fail_once=["UpdatePodSandbox"])
        assert plugins.events("sizer", "Synchronize")[0]["pod_shares"][pod_id] == 256

        async def update(shares: int) -> None:
            await env.stub.UpdatePodSandboxResources(
                api_pb2.UpdatePodSandboxResourcesRequest(
                    pod_sandbox_id=pod_id,
                    resources=api_pb2.LinuxContainerResources(cpu_shares=shares),
                    overhead=api_pb2.LinuxContainerResources(cpu_shares=20),
                )
            )

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await update(512)
        assert "induced UpdatePodSandbox failure" in str(caught.value.details())
        assert plugins.events("sizer", "PostUpdatePodSandbox") == []
        await update(768)
        seen = plugins.events("sizer", "UpdatePodSandbox")[-1]
        assert (seen["shares"], seen["overhead_shares"]) == (768, 20)
        await plugins.wait_for("sizer", "PostUpdatePodSandbox", pod=pod_id)
        directory = Hierarchies.detect().controller_path("cpu", f"/{env.cgroup_parent}/resized")
        assert directory is not None
        assert Path(directory, "cpu.shares").read_text().strip() == str(768 + 20)


# -- the contract ------------------------------------------------------------------------


async def test_run_pod_sandbox_contract(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("gate", "00", block=["RunPodSandbox"])
        pod = pod_config(env, "gated")
        run = asyncio.create_task(run_pod(env, pod))
        hooked = await plugins.wait_for("gate", "RunPodSandbox")
        pod_id = hooked["pod"]
        assert pod_id not in await list_pod_ids(env)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.stub.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=sleeper("early"), sandbox_config=pod
                )
            )
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        plugins.release("gate", "RunPodSandbox")
        assert await run == pod_id
        reply = await env.stub.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        )
        assert reply.status.state == api_pb2.SANDBOX_READY

        # A failing hook fails the RPC, leaves nothing behind, and a retry works.
        plugins.behave("gate", fail_once=["RunPodSandbox"])
        retried = pod_config(env, "retried")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await run_pod(env, retried)
        assert "induced RunPodSandbox failure" in str(caught.value.details())
        failed_id = plugins.events("gate", "RunPodSandbox")[-1]["pod"]
        assert failed_id not in await list_pod_ids(env)
        assert env.daemon.context is not None
        assert env.daemon.context.registry.find_sandbox(failed_id) is None
        assert not (env.tmp / "run" / "ns" / "netns" / failed_id).exists()
        retry_id = await run_pod(env, retried)
        assert retry_id in await list_pod_ids(env)


async def test_create_container_contract(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("gate", "00", block=["CreateContainer"])
        pod = pod_config(env, "creating")
        pod_id = await run_pod(env, pod)

        async def create_held() -> api_pb2.CreateContainerResponse:
            return await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=sleeper("held"), sandbox_config=pod
                )
            )

        create = asyncio.create_task(create_held())
        hooked = await plugins.wait_for("gate", "CreateContainer")
        assert hooked["container"] not in await list_container_ids(env, pod_id)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.stub.ContainerStatus(
                api_pb2.ContainerStatusRequest(container_id=hooked["container"])
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        plugins.release("gate", "CreateContainer")
        created = (await create).container_id
        assert created == hooked["container"]
        reply = await env.stub.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=created))
        assert reply.status.state == api_pb2.CONTAINER_CREATED

        plugins.behave("gate", fail_once=["CreateContainer"])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=sleeper("flaky"), sandbox_config=pod
                )
            )
        assert "induced CreateContainer failure" in str(caught.value.details())
        failed_id = plugins.events("gate", "CreateContainer")[-1]["container"]
        assert env.daemon.context is not None
        assert env.daemon.context.registry.find_container(failed_id) is None
        assert not env.daemon.context.layout.bundle(failed_id).exists()
        assert failed_id not in await list_container_ids(env, pod_id)
        retry = await start_container(env, pod_id, pod, sleeper("flaky"))
        assert not plugins.events("gate", "StartContainer") or all(
            e["container"] != failed_id for e in plugins.events("gate", "StartContainer")
        )
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=retry, timeout=5))
        await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=retry))


async def test_stop_pod_sandbox_contract(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("gate", "00", block=["StopPodSandbox"])
        pod = pod_config(env, "stopping")
        pod_id = await run_pod(env, pod)
        ctr = await start_container(env, pod_id, pod, sleeper("work"))

        async def stop_pod() -> None:
            await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))

        stop = asyncio.create_task(stop_pod())
        await plugins.wait_for("gate", "StopPodSandbox", pod=pod_id)
        reply = await env.stub.ListContainers(
            api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(pod_sandbox_id=pod_id))
        )
        assert [c.id for c in reply.containers] == [ctr]
        assert reply.containers[0].state == api_pb2.CONTAINER_EXITED
        status = await env.stub.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        )
        assert status.status.id == pod_id
        plugins.release("gate", "StopPodSandbox")
        await stop
        # Idempotent: a second stop sends no second event.
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        assert len(plugins.events("gate", "StopPodSandbox")) == 1


# -- adjustments and updates ------------------------------------------------------------


def _cgroup_file(pid: int, controller: str, name: str) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controllers}{path}/{name}")
    raise AssertionError(f"no {controller} cgroup for {pid}")


def _nofile(pid: int) -> tuple[str, str]:
    """The soft and hard RLIMIT_NOFILE of a process."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError(f"no open files limit for {pid}")


async def _pid(env: Env, container_id: str) -> int:
    reply = await env.stub.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=container_id, verbose=True)
    )
    return int(json.loads(reply.info["info"])["pid"])


async def test_adjustments_reach_the_oci_config_and_updates_the_container(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the host\n")
    hook_mark = tmp_path / "hook-ran"
    adjust = {
        "annotations": {"example.com/nri": "adjusted", "-note": ""},
        "mounts": [
            {
                "destination": "/nri",
                "type": "bind",
                "source": str(shared),
                "options": ["rbind", "ro"],
            }
        ],
        "env": [{"key": "NRI_ADDED", "value": "yes"}],
        "hooks": {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {hook_mark}"]}]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}],
        "linux": {
            "devices": [{"path": "/dev/nri-null", "type": "c", "major": 1, "minor": 3}],
            "resources": {
                "memory": {"limit": {"value": 96 << 20}},
                "cpu": {"shares": {"value": 512}},
            },
            "seccompPolicy": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {
                        "names": ["mkdir", "mkdirat"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": {"value": 1},
                    }
                ],
            },
        },
    }
    async with nri_env(tmp_path) as (env, plugins):
        moved = f"/{env.cgroup_parent}/adjusted/nri-moved"
        adjust["linux"]["cgroupsPath"] = moved
        adjust["linux"]["oomScoreAdj"] = {"value": -500}
        await plugins.start(
            "adjuster", "10", adjust=adjust, update_memory=80 << 20, push_memory=72 << 20
        )
        pod = pod_config(env, "adjusted")
        pod_id = await run_pod(env, pod)
        config = sleeper("app")
        config.annotations["note"] = "removed by the plugin"
        ctr = await start_container(env, pod_id, pod, config)
        await wait_for_comm(env, ctr, "sh")
        assert env.daemon.context is not None
        record = env.daemon.context.registry.container(ctr)
        spec = json.loads(Path(record.bundle, "config.json").read_text())
        assert spec["annotations"]["example.com/nri"] == "adjusted"
        assert "note" not in spec["annotations"]
        assert {"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256} in spec["process"]["rlimits"]
        assert hook_mark.exists()

        pid = await _pid(env, ctr)
        assert _nofile(pid) == ("256", "512")
        # An exec'd process gets the rlimits too; only its hard limit is checked, since
        # runc 1.1.5 (Go 1.19) raises an exec's NOFILE soft limit to the hard one at
        # random (runc#4195, fixed in runc 1.1.13): see docs/streaming.md.
        out = await exec_sync(env, ctr, ["sh", "-c", "echo $NRI_ADDED; cat /nri/hello; ulimit -Hn"])
        assert out.exit_code == 0, out.stderr
        assert out.stdout.decode().split("\n")[:3] == ["yes", "from the host", "512"]
        out = await exec_sync(
            env, ctr, ["sh", "-c", "test -c /dev/nri-null && echo x > /dev/nri-null"]
        )
        assert out.exit_code == 0, out.stderr
        out = await exec_sync(env, ctr, ["mkdir", "/tmp/refused"])
        assert out.exit_code != 0 and b"not permitted" in out.stderr
        assert _cgroup_file(pid, "cpu", "cpu.shares").read_text().strip() == "512"
        assert record.cgroup_path == moved
        assert _cgroup_file(pid, "memory", "x").parent.name == "nri-moved"
        host = await env.daemon.context.host_info()
        wanted_oom = -500 if host.sys_resource else max(-500, host.oom_score_adj)
        assert int(Path(f"/proc/{pid}/oom_score_adj").read_text()) == wanted_oom

        # UpdateContainers from the plugin (after PostStart) goes through runc update.
        await plugins.wait_for("adjuster", "UpdateContainersDone", failed=[])
        limit = _cgroup_file(pid, "memory", "memory.limit_in_bytes")
        assert int(limit.read_text()) == 72 << 20

        # UpdateContainerResources: the plugin's UpdateContainer answer wins.
        resources = api_pb2.LinuxContainerResources(memory_limit_in_bytes=64 << 20)
        await env.stub.UpdateContainerResources(
            api_pb2.UpdateContainerResourcesRequest(container_id=ctr, linux=resources)
        )
        assert int(limit.read_text()) == 80 << 20


async def test_unsupported_adjustments_fail_with_a_clear_error(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("rdt", "10", adjust={"linux": {"rdt": {"remove": True}}})
        pod = pod_config(env, "rdt")
        pod_id = await run_pod(env, pod)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await start_container(env, pod_id, pod, sleeper("rdt"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "crid does not support: RDT" in str(caught.value.details())
        assert await list_container_ids(env, pod_id) == []


async def test_validators_see_owners_and_can_reject(tmp_path: Path) -> None:
    async with nri_env(tmp_path) as (env, plugins):
        await plugins.start("adjuster", "10", adjust={"annotations": {"example.com/x": "1"}})
        await plugins.start("validator", "90", reject_annotation="example.com/x")
        pod = pod_config(env, "validated")
        pod_id = await run_pod(env, pod)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await start_container(env, pod_id, pod, sleeper("judged"))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "10-adjuster may not set example.com/x" in str(caught.value.details())
        seen = plugins.events("validator", "ValidateContainerAdjustment")[0]
        assert seen["annotation_owners"] == {"example.com/x": "10-adjuster"}
        assert seen["annotations"] == {"example.com/x": "1"}
        assert seen["plugins"] == ["10-adjuster", "90-validator"]
        assert await list_container_ids(env, pod_id) == []
        plugins.behave("validator")
        await start_container(env, pod_id, pod, sleeper("judged"))


# -- slow, dead and pre-installed plugins ------------------------------------------------


async def test_slow_and_dead_plugins_are_cut_off(tmp_path: Path) -> None:
    async with nri_env(tmp_path, 'plugin_request_timeout = "1s"\n') as (env, plugins):
        await plugins.start("stuck", "10", hang=["CreateContainer"])
        await plugins.start("dies", "20")
        await plugins.start("fine", "30")
        plugins.processes["dies"].kill()
        await plugins.processes["dies"].wait()
        pod = pod_config(env, "slow")
        pod_id = await run_pod(env, pod)
        started = time.monotonic()
        ctr = await start_container(env, pod_id, pod, sleeper("app"))
        assert time.monotonic() - started < 10  # one timeout, not a stall
        await plugins.wait_for("fine", "StartContainer", container=ctr)
        await plugins.wait_for("stuck", "Closed")
        assert plugins.events("stuck", "StartContainer") == []
        assert env.daemon.context is not None
        host = env.lifecycle.containers.nri.host
        assert host is not None
        assert [p.name for p in host.plugins] == ["fine"]


async def test_pre_installed_plugins_are_started_with_their_config(tmp_path: Path) -> None:
    plugin_dir = tmp_path / "nri" / "plugins"
    plugin_dir.mkdir(parents=True)
    conf_dir = tmp_path / "nri" / "conf.d"
    conf_dir.mkdir()
    (conf_dir / "15-builtin.conf").write_text("level: 3\n")
    control = tmp_path / "nri-control"
    control.mkdir()
    script = plugin_dir / "15-builtin"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {PLUGIN} {control}\n")
    script.chmod(0o755)
    async with nri_env(tmp_path, "disable_connections = true\n") as (env, plugins):
        ready = await plugins.wait_for("builtin", "Ready")
        assert ready
        configured = plugins.events("builtin", "Configure")[0]
        assert configured["config"] == "level: 3\n" and configured["runtime"] == "crid"
        assert not (tmp_path / "nri" / "nri.sock").exists()
        pod_id = await run_pod(env, pod_config(env, "builtin"))
        await plugins.wait_for("builtin", "RunPodSandbox", pod=pod_id)
    # crid stopping tells the plugin (Shutdown) before it disconnects and reaps it.
    assert plugins.events("builtin", "Shutdown")
