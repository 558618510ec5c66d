"""Helpers that hang, fail or die: runc, a CNI plugin, conmon.

The runc in front is a shell wrapper around the real one and the CNI plugin a script
chained after the real bridge network (``_faults_support``); each hangs or fails while
its marker file exists. Every hang ends in the configured timeout with
DEADLINE_EXCEEDED naming the command, the hung process is killed, nothing is left
half-made, and the same RPC works once the helper behaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.sandbox.lifecycle import Lifecycle
from crid.server import Daemon
from ocinet.testing import delete_link, remove_iptables_rules_mentioning
from ocistore.testing import load_built

from ._faults_support import hanging_cni_plugin, runc_wrapper
from ._lifecycle import (
    BUILT,
    IMAGE,
    Env,
    container_config,
    crid_env,
    pod_config,
    run_pod,
    runtime_table,
    status,
    wait_exited,
    write_network,
)
from .conftest import make_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

CNI_PLUGIN = "crid-fault-cni"


def _runtime_lines(wrapper: Path, timeout: str = "1s") -> str:
    return (
        f'runtime_timeout = "{timeout}"\ncreate_timeout = "2s"\n'
        f'[crid.runtime.runtimes.runc]\nruntime_path = "{wrapper}"\n'
    )


def _pids(calls: Path) -> list[int]:
    lines = calls.read_text().splitlines() if calls.exists() else []
    return [int(line.split()[0]) for line in lines]


async def _all_gone(pids: list[int], timeout: float = 5.0) -> None:
    """Every listed process has ended (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        if not alive:
            return
        assert time.monotonic() < deadline, f"helper processes still running: {alive}"
        await asyncio.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


async def _expect_deadline(call: Callable[[], object], *words: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call()  # type: ignore[misc]
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, info.value.details()
    details = info.value.details() or ""
    for word in words:
        assert word in details, details


async def test_fault_runc_hangs_on_create_start_update_kill_and_delete(tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    wrapper = runc_wrapper(faults)
    calls = faults / "calls"
    async with crid_env(tmp_path, _runtime_lines(wrapper)) as env:
        assert env.daemon.context is not None
        ctx = env.daemon.context
        # The container shares the pod's PID namespace, so that its SIGKILL goes through
        # `runc kill` (crid sends every other signal, and any to a container with a PID
        # namespace of its own, itself: crid.oci.init_signal).
        pod = pod_config(env, pid=api_pb2.POD)
        pod_id = await run_pod(env, pod)
        script = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
        config = container_config("c", [script], pid=api_pb2.POD)
        request = api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=pod
        )

        # create: conmon's runc create hangs; both are killed, nothing stays.
        (faults / "hang-create").touch()
        await _expect_deadline(lambda: env.stub.CreateContainer(request), "create", "timed out")
        (faults / "hang-create").unlink()
        await _all_gone(_pids(calls))
        assert list(ctx.registry.containers()) == []
        bundles = ctx.layout.bundle("x").parent
        assert not bundles.is_dir() or not any(bundles.iterdir())
        assert not any((Path(ctx.store.store.root) / "containers").iterdir())
        cid = (await env.stub.CreateContainer(request)).container_id

        # start: the container stays created, and a second start works.
        (faults / "hang-start").touch()
        start = api_pb2.StartContainerRequest(container_id=cid)
        await _expect_deadline(lambda: env.stub.StartContainer(start), "runc start", "timed out")
        (faults / "hang-start").unlink()
        assert (await status(env, cid)).state == api_pb2.CONTAINER_CREATED
        await env.stub.StartContainer(start)
        assert (await status(env, cid)).state == api_pb2.CONTAINER_RUNNING

        # update: UpdateContainerResources fails, then works.
        (faults / "hang-update").touch()
        update = api_pb2.UpdateContainerResourcesRequest(
            container_id=cid, linux=api_pb2.LinuxContainerResources(cpu_shares=512)
        )
        await _expect_deadline(
            lambda: env.stub.UpdateContainerResources(update), "runc update", "timed out"
        )
        (faults / "hang-update").unlink()
        await env.stub.UpdateContainerResources(update)

        # kill: StopContainer fails (the container still runs), then works.
        (faults / "hang-kill").touch()
        stop = api_pb2.StopContainerRequest(container_id=cid, timeout=0)
        await _expect_deadline(lambda: env.stub.StopContainer(stop), "runc kill", "timed out")
        (faults / "hang-kill").unlink()
        assert (await status(env, cid)).state == api_pb2.CONTAINER_RUNNING
        await env.stub.StopContainer(stop)
        assert (await status(env, cid)).state == api_pb2.CONTAINER_EXITED

        # delete: RemoveContainer fails and keeps the record, then removes everything.
        (faults / "hang-delete").touch()
        remove = api_pb2.RemoveContainerRequest(container_id=cid)
        await _expect_deadline(lambda: env.stub.RemoveContainer(remove), "runc delete")
        (faults / "hang-delete").unlink()
        assert ctx.registry.find_container(cid) is not None
        await env.stub.RemoveContainer(remove)
        assert ctx.registry.find_container(cid) is None
        assert not (Path(ctx.store.store.root) / "containers" / cid).exists()
        await _all_gone(_pids(calls))


@pytest.mark.parametrize("fault", ["hang", "fail"])
async def test_fault_cni_plugin_on_add(tmp_path: Path, fault: str) -> None:
    faults = tmp_path / "faults"
    hanging_cni_plugin(faults, CNI_PLUGIN)
    dirs = f'plugin_dirs = ["{faults}", "/opt/cni/bin", "/usr/lib/cni"]\nplugin_timeout = "1s"\n'
    async with crid_env(tmp_path, network_lines=dirs, extra_plugins=[{"type": CNI_PLUGIN}]) as env:
        assert env.daemon.context is not None
        ctx = env.daemon.context
        (faults / f"{fault}-ADD").touch()
        pod = pod_config(env)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await run_pod(env, pod)
        details = info.value.details() or ""
        if fault == "hang":
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, details
            assert CNI_PLUGIN in details and "timed out" in details
        else:
            assert info.value.code() == grpc.StatusCode.INTERNAL, details
            assert "injected ADD failure" in details
        (faults / f"{fault}-ADD").unlink()
        await _all_gone(_pids(faults / "calls"))
        # Nothing stays: no pod, no pinned namespace, no address lease, no cached result.
        assert list(ctx.registry.sandboxes()) == []
        listed = await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())
        assert list(listed.items) == []
        assert _leases(tmp_path / "ipam") == []
        netns = ctx.layout.namespaces / "netns"
        assert not netns.is_dir() or not any(netns.iterdir())
        # The same request works once the plugin does.
        pod_id = await run_pod(env, pod)
        assert len(_leases(tmp_path / "ipam")) == 1
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert _leases(tmp_path / "ipam") == []


@pytest.mark.parametrize("fault", ["hang", "fail"])
async def test_fault_cni_plugin_on_del(tmp_path: Path, fault: str) -> None:
    faults = tmp_path / "faults"
    hanging_cni_plugin(faults, CNI_PLUGIN)
    dirs = f'plugin_dirs = ["{faults}", "/opt/cni/bin", "/usr/lib/cni"]\nplugin_timeout = "1s"\n'
    async with crid_env(tmp_path, network_lines=dirs, extra_plugins=[{"type": CNI_PLUGIN}]) as env:
        pod_id = await run_pod(env, pod_config(env))
        (faults / f"{fault}-DEL").touch()
        stop = api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.StopPodSandbox(stop)
        expected = (
            grpc.StatusCode.DEADLINE_EXCEEDED if fault == "hang" else grpc.StatusCode.INTERNAL
        )
        assert info.value.code() == expected, info.value.details()
        assert CNI_PLUGIN in (info.value.details() or "")
        # The pod keeps its network (and says so) until a DEL succeeds.
        reply = await env.stub.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        )
        assert reply.status.state == api_pb2.SANDBOX_READY
        (faults / f"{fault}-DEL").unlink()
        await _all_gone(_pids(faults / "calls"))
        await env.stub.StopPodSandbox(stop)
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert _leases(tmp_path / "ipam") == []


def _leases(ipam: Path) -> list[Path]:
    """host-local's lease files (one per address, named by it)."""
    if not ipam.is_dir():
        return []
    return [p for p in ipam.rglob("*") if p.is_file() and p.name.count(".") == 3]


async def test_fault_conmon_dies_while_its_container_runs(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        assert env.daemon.context is not None
        ctx = env.daemon.context
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        created = await env.stub.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id,
                config=container_config("c", ["sleep 600"]),
                sandbox_config=pod,
            )
        )
        cid = created.container_id
        await env.stub.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
        record = ctx.registry.container(cid)
        os.kill(record.conmon_pid, signal.SIGKILL)
        exited = await wait_exited(env, cid)
        assert exited.exit_code == 255
        assert "conmon" in exited.message and "died" in exited.message
        deadline = time.monotonic() + 5
        while Path(f"/proc/{record.pid}").exists() and not _zombie(record.pid):
            assert time.monotonic() < deadline, "the unmonitored container still runs"
            await asyncio.sleep(0.05)
        await env.stub.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=cid))
        assert ctx.registry.find_container(cid) is None


@contextlib.asynccontextmanager
async def _restartable(
    tmp: Path,
    runtime_lines: str = "",
    *,
    network_lines: str = "",
    extra_plugins: Sequence[dict[str, object]] = (),
) -> AsyncIterator[Env]:
    """Like ``crid_env``, but the test may replace ``env.daemon`` (a restart)."""
    network, bridge, subnet = write_network(tmp, extra_plugins)
    _, config = make_config(tmp, runtime_table(tmp, runtime_lines), network_lines)
    parent = "crid-test-restart-" + os.urandom(4).hex()
    daemon = Daemon(config)
    await daemon.start()
    assert daemon.context is not None
    await asyncio.to_thread(load_built, daemon.context.store.store, BUILT, [IMAGE])
    channel = grpc.aio.insecure_channel(f"unix://{daemon.socket_path}")
    env = Env(
        tmp=tmp,
        daemon=daemon,
        stub=api_pb2_grpc.RuntimeServiceStub(channel),
        cgroup_parent=parent,
        subnet=subnet,
        network=network,
    )
    try:
        yield env
    finally:
        if env.daemon.context is not None:
            for pod in list(env.daemon.context.registry.sandboxes()):
                with contextlib.suppress(Exception):
                    await Lifecycle.of(env.daemon.context).pods.remove(pod.id)
        await channel.close()
        await env.daemon.stop(grace=0)
        delete_link(bridge)
        remove_iptables_rules_mentioning(network)
        Hierarchies.detect().remove(parent)


async def test_fault_recovery_of_hung_runtimes_is_concurrent(tmp_path: Path) -> None:
    """Three containers lost their conmon while crid was down and runc hangs on
    ``state``: at start-up the three calls wait side by side (not one after another),
    each ends in the timeout, and the containers are then killed and marked EXITED."""
    faults = tmp_path / "faults"
    wrapper = runc_wrapper(faults)
    async with _restartable(tmp_path, _runtime_lines(wrapper, timeout="3s")) as env:
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        ids = []
        for name in ("a", "b", "c"):
            created = await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id,
                    config=container_config(name, ["sleep 600"]),
                    sandbox_config=pod,
                )
            )
            await env.stub.StartContainer(
                api_pb2.StartContainerRequest(container_id=created.container_id)
            )
            ids.append(created.container_id)
        config = env.daemon.config
        assert env.daemon.context is not None
        records = [env.daemon.context.registry.container(cid) for cid in ids]
        await env.daemon.stop(grace=0)
        for record in records:
            os.kill(record.conmon_pid, signal.SIGKILL)
        (faults / "hang-state").touch()
        calls = faults / "calls"
        before = len(_pids(calls))
        env.daemon = Daemon(config)
        starting = asyncio.ensure_future(env.daemon.start())
        # All three hung state calls are waiting at the same moment.
        deadline = time.monotonic() + 10
        while True:
            lines = calls.read_text().splitlines()[before:] if calls.exists() else []
            hung = [int(line.split()[0]) for line in lines if line.split()[1] == "state"]
            if len(hung) == 3:
                break
            assert not starting.done(), "crid started without asking runc"
            assert time.monotonic() < deadline, f"state calls so far: {lines}"
            await asyncio.sleep(0.02)
        assert all(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in hung)
        await starting
        (faults / "hang-state").unlink()
        for cid in ids:
            exited = await wait_exited(env, cid)
            assert exited.exit_code == 255 and "conmon" in exited.message
        # SIGKILLed (runc kill returns once the signal is sent; dying takes a moment)
        await _all_gone([record.pid for record in records])
        await _all_gone(hung)


async def test_fault_cni_gc_at_start_is_bounded_by_one_plugin_timeout(tmp_path: Path) -> None:
    """Three stale attachments (pods crid forgot, as a crash between ADD and the record
    would leave) and a plugin whose DEL hangs: the start-up sweep stops after one
    plugin_timeout instead of one per attachment, crid serves, and the next start with
    a working plugin releases all three addresses."""
    faults = tmp_path / "faults"
    hanging_cni_plugin(faults, CNI_PLUGIN)
    dirs = f'plugin_dirs = ["{faults}", "/opt/cni/bin", "/usr/lib/cni"]\nplugin_timeout = "1s"\n'
    async with _restartable(
        tmp_path, network_lines=dirs, extra_plugins=[{"type": CNI_PLUGIN}]
    ) as env:
        assert env.daemon.context is not None
        ctx = env.daemon.context
        for name in ("a", "b", "c"):
            pod_id = await run_pod(env, pod_config(env, name))
            await ctx.registry.remove_sandbox(pod_id)
        assert len(_leases(tmp_path / "ipam")) == 3
        config = env.daemon.config
        await env.daemon.stop(grace=0)
        (faults / "hang-DEL").touch()
        calls = faults / "calls"
        before = len(calls.read_text().splitlines())
        env.daemon = Daemon(config)
        await env.daemon.start()
        dels = [line for line in calls.read_text().splitlines()[before:] if " DEL " in line]
        assert len(dels) == 1, dels  # the sweep stopped at the first hung DEL
        await _all_gone([int(line.split()[0]) for line in dels])
        assert len(_leases(tmp_path / "ipam")) == 3
        (faults / "hang-DEL").unlink()
        await env.daemon.stop(grace=0)
        env.daemon = Daemon(config)
        await env.daemon.start()
        assert _leases(tmp_path / "ipam") == []
