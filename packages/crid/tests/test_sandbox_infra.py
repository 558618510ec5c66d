"""The infra (pause) container (``drop_infra_ctr = false``) with a real Daemon: runc under
conmon, a CNI bridge test network and the busybox test image as the pause image.

The pause command traps SIGTERM, as the real pause binary does. Every test removes its
pods, bridge, iptables chains and cgroup parent (``crid_env``) even when it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.sandbox.lifecycle import Lifecycle
from crid.server import Daemon
from ociimage.testing import LocalRegistry, TestImages
from ocistore.errors import ImageNotFoundError

from ._lifecycle import (
    IMAGE,
    Env,
    container_config,
    crid_env,
    pod_config,
    run_pod,
    start_container,
    status,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

PAUSE = "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"


def infra_lines(image: str = IMAGE, command: str = f'["sh", "-c", "{PAUSE}"]') -> str:
    """``[crid.runtime]`` lines asking for an infra container, then the image table."""
    return (
        "drop_infra_ctr = false\n"
        f'[crid.image]\npause_image = "{image}"\npause_command = {command}\n'
    )


async def pod_state(env: Env, pod_id: str) -> int:
    reply = await env.stub.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    return int(reply.status.state)


async def wait_pod_state(env: Env, pod_id: str, state: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (found := await pod_state(env, pod_id)) != state:
        assert time.monotonic() < deadline, f"pod {pod_id} still in state {found}"
        await asyncio.sleep(0.05)


def ns_inode(pid: int, kind: str) -> int:
    return Path(f"/proc/{pid}/ns/{kind}").stat().st_ino


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def memory_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    raise AssertionError(f"no memory cgroup for {pid}")


def namespaces_of(env: Env, pod_id: str) -> dict[str, str]:
    return dict(env.lifecycle.ctx.registry.sandbox(pod_id).namespaces)


async def infra_pid(env: Env, pod_id: str, timeout: float = 10.0) -> int:
    """The infra process, once it runs the pause command: ``runc start`` returns before
    the container's process has exec'd (it is ``runc init`` for a moment)."""
    pid = await env.lifecycle.pods.infra.pid(pod_id)
    assert pid > 0
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"init"]:
        assert time.monotonic() < deadline, f"infra {pid} never exec'd its command"
        await asyncio.sleep(0.01)
    return pid


async def test_infra_container_joins_the_pod_and_goes_with_it(tmp_path: Path) -> None:
    async with crid_env(tmp_path, infra_lines()) as env:
        ctx = env.lifecycle.ctx
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        assert await pod_state(env, pod_id) == api_pb2.SANDBOX_READY
        pid = await infra_pid(env, pod_id)
        bundle = ctx.layout.bundle(pod_id)
        # The pause command, under conmon, in the pod's pinned namespaces and cgroup.
        assert PAUSE in Path(f"/proc/{pid}/cmdline").read_text()
        assert parent_pid(pid) == int((bundle / "conmon.pid").read_text())
        pins = namespaces_of(env, pod_id)
        for key, kind in (("network", "net"), ("ipc", "ipc"), ("uts", "uts")):
            assert ns_inode(pid, kind) == Path(pins[key]).stat().st_ino, kind
        assert memory_cgroup(pid) == f"/{env.cgroup_parent}/web/crid-{pod_id}"

        # A container joins the same pod namespaces; only it is listed.
        cid = await start_container(env, pod_id, pod, container_config("app", ["sleep 60"]))
        cpid = ctx.registry.container(cid).pid
        assert ns_inode(cpid, "net") == ns_inode(pid, "net")
        listed = await env.stub.ListContainers(api_pb2.ListContainersRequest())
        assert [c.id for c in listed.containers] == [cid]
        by_pod = await env.stub.ListContainers(
            api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(pod_sandbox_id=pod_id))
        )
        assert [c.id for c in by_pod.containers] == [cid]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await status(env, pod_id)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

        # Stop: the container, then the infra container (SIGTERM: it exits 0).
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        assert (await status(env, cid)).state == api_pb2.CONTAINER_EXITED
        assert (ctx.layout.exits / pod_id).read_text().strip() == "0"
        assert await pod_state(env, pod_id) == api_pb2.SANDBOX_NOTREADY
        assert not Path(f"/proc/{pid}").exists() or parent_pid(pid) != int(
            (bundle / "conmon.pid").read_text()
        )
        # Stop again is a no-op.
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))

        # Remove: bundle, exit file, root filesystem, cgroups all gone.
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert not bundle.exists()
        assert not (ctx.layout.exits / pod_id).exists()
        assert not list(ctx.layout.attach.iterdir())  # conmon's attach links, infra's too
        assert pod_id not in {c.id for c in ctx.store.store.list_containers()}
        cgroups = [
            ctx.hierarchies.controller_path(c, f"/{env.cgroup_parent}/web")
            for c in ("memory", "cpu", "pids")
        ]
        assert [p for p in cgroups if p is not None and p.exists()] == []
        assert any(p is not None for p in cgroups)


async def test_infra_death_makes_the_pod_not_ready(tmp_path: Path) -> None:
    async with crid_env(tmp_path, infra_lines()) as env:
        ctx = env.lifecycle.ctx
        pod = pod_config(env, "shared")
        pod.linux.security_context.namespace_options.pid = api_pb2.POD
        pod_id = await run_pod(env, pod)
        pid = await infra_pid(env, pod_id)
        pins = namespaces_of(env, pod_id)
        # The shared PID namespace stays held by the pinned holder; infra joins it.
        assert ns_inode(pid, "pid") == Path(pins["pid"]).stat().st_ino
        ip = ctx.registry.sandbox(pod_id).ips[0]
        lease = tmp_path / "ipam" / env.network / ip
        assert lease.exists()

        os.kill(pid, signal.SIGKILL)
        await wait_pod_state(env, pod_id, api_pb2.SANDBOX_NOTREADY)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id,
                    config=container_config("late", ["true"]),
                    sandbox_config=pod,
                )
            )
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        # StopPodSandbox still detaches the network of a pod its infra left.
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        assert not lease.exists()
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert not ctx.layout.bundle(pod_id).exists()
        assert not Path(pins["pid"]).exists()


async def test_infra_failure_undoes_everything(tmp_path: Path) -> None:
    lines = infra_lines(command='["/no/such/pause"]')
    async with crid_env(tmp_path, lines) as env:
        ctx = env.lifecycle.ctx
        with pytest.raises(grpc.aio.AioRpcError):
            await run_pod(env, pod_config(env))
        assert list(ctx.registry.sandboxes()) == []
        assert [c.id for c in ctx.store.store.list_containers()] == []
        for directory in (
            ctx.layout.bundle("x").parent,
            ctx.layout.sandbox_dir("x").parent,
            ctx.layout.attach,
            ctx.layout.exits,
        ):
            assert not directory.exists() or list(directory.iterdir()) == []
        for kind in ("net", "ipc", "uts"):
            pins = ctx.layout.namespaces / f"{kind}ns"
            assert not pins.exists() or list(pins.iterdir()) == []
        leases = tmp_path / "ipam" / env.network
        assert not leases.exists() or [p for p in leases.iterdir() if p.name[0].isdigit()] == []


def registry_lines(tmp_path: Path, host: str) -> str:
    """More ``[crid.image]`` lines: a registries.conf trusting ``host`` over plain HTTP
    and a policy accepting anything, both in tmp_path."""
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    return (
        f'signature_policy = "{policy}"\nregistries_conf = "{conf}"\n'
        f'registries_conf_dir = "{tmp_path / "registries.conf.d"}"\n'
        f'registries_d = "{tmp_path / "registries.d"}"\n'
    )


async def test_missing_pause_image_is_pulled(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    reference = test_images.busybox.reference
    lines = infra_lines(image=reference) + registry_lines(tmp_path, registry.host)
    async with crid_env(tmp_path, lines) as env:
        store = env.lifecycle.ctx.store
        with pytest.raises(ImageNotFoundError):
            await store.image(reference)
        pod_id = await run_pod(env, pod_config(env))
        assert await pod_state(env, pod_id) == api_pb2.SANDBOX_READY
        pid = await infra_pid(env, pod_id)
        assert PAUSE in Path(f"/proc/{pid}/cmdline").read_text()
        assert (await store.image(reference)).id == test_images.busybox.config_digest
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


async def test_missing_pause_image_that_cannot_be_pulled_is_named(tmp_path: Path) -> None:
    # A registry on a loopback port nobody listens on: the pull fails at once.
    image = "127.0.0.1:9/nothing/pause:1"
    lines = infra_lines(image=image) + registry_lines(tmp_path, "127.0.0.1:9")
    async with crid_env(tmp_path, lines) as env:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await run_pod(env, pod_config(env))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert image in (info.value.details() or "")
        assert list(env.lifecycle.ctx.registry.sandboxes()) == []


async def test_infra_container_is_recovered_after_a_restart(tmp_path: Path) -> None:
    async with crid_env(tmp_path, infra_lines()) as env:
        pod_id = await run_pod(env, pod_config(env))
        pid = await infra_pid(env, pod_id)
        config = env.daemon.config
        exit_file = Path(config.crid.runtime.container_exits_dir, pod_id)
        await env.daemon.stop(grace=0)
        try:
            second = Daemon(config)
            await second.start()
            try:
                assert second.context is not None
                pods = Lifecycle.of(second.context).pods
                # Still READY and running the same process: the bundle was not an orphan.
                assert second.context.registry.sandbox(pod_id).state.name == "READY"
                assert await pods.infra.pid(pod_id) == pid
                assert Path(f"/proc/{pid}").exists() and not exit_file.exists()
            finally:
                await second.stop(grace=0)

            # It dies while crid is down: the pod comes back NOTREADY.
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not exit_file.exists():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            await env.daemon.start()  # crid_env removes the pods through this daemon
        assert await pod_state(env, pod_id) == api_pb2.SANDBOX_NOTREADY
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert not env.lifecycle.ctx.layout.bundle(pod_id).exists()
        assert not exit_file.exists()


async def test_default_runs_no_infra_container(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        ctx = env.lifecycle.ctx
        pod_id = await run_pod(env, pod_config(env))
        assert await pod_state(env, pod_id) == api_pb2.SANDBOX_READY
        assert not ctx.layout.bundle(pod_id).exists()
        assert not await env.lifecycle.pods.infra.present(pod_id)
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert list(ctx.registry.sandboxes()) == []
