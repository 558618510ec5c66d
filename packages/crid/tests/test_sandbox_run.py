"""RunPodSandbox runs the CNI ADD beside its host-side steps (the pod's files, PID
namespace holder and cgroup): a failure of either side, or a cancellation at any moment,
leaves nothing behind (no record, pin, file, cgroup, address lease or cached result).
A pod that StopPodSandbox detached is not DEL'd again by RemovePodSandbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.cgroups import Hierarchies
from crid.state import SandboxState
from crid.translate import pod_request

from ._faults_support import hanging_cni_plugin
from ._lifecycle import Env, container_config, crid_env, pod_config, run_pod, start_container

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "catatonit", "/usr/lib/cni/bridge"),
]

PLUGIN = "crid-run-cni"


def leases(env: Env) -> list[str]:
    """host-local's lease files (one per address, named by it)."""
    ipam = env.tmp / "ipam"
    found = ipam.rglob("*") if ipam.is_dir() else iter(())
    return sorted(p.name for p in found if p.is_file() and p.name.count(".") == 3)


def pod_leftovers(env: Env, name: str) -> dict[str, list[str]]:
    """Everything a pod of ``env``'s crid could have left behind (empty lists: none)."""
    ctx = env.daemon.context
    assert ctx is not None

    def listing(directory: Path) -> list[str]:
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    namespaces = ctx.layout.namespaces
    cgroup = f"{env.cgroup_parent}/{name}"
    return {
        "records": [s.id for s in ctx.registry.sandboxes()],
        "pins": [
            p for kind in ("net", "ipc", "uts", "pid") for p in listing(namespaces / f"{kind}ns")
        ],
        "files": listing(ctx.layout.sandbox_dir("x").parent),
        "cgroups": [str(r) for r in Hierarchies.detect().roots() if (r / cgroup).exists()],
        "leases": leases(env),
        "cni cache": listing(ctx.network.cni.cache.results_dir),
    }


NOTHING: dict[str, list[str]] = {
    "records": [],
    "pins": [],
    "files": [],
    "cgroups": [],
    "leases": [],
    "cni cache": [],
}


async def test_a_cancelled_run_leaves_nothing_whenever_it_is_cancelled(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pods = env.lifecycle.pods
        cancelled = 0
        # From before the pins to inside the plugins' runs: each delay cancels a
        # different step (a shared PID namespace too: its holder is started beside ADD).
        for delay in (0.0, 0.001, 0.003, 0.006, 0.01, 0.015, 0.02, 0.03, 0.05):
            config = pod_config(env, "cancel")
            config.linux.security_context.namespace_options.pid = api_pb2.POD
            task = asyncio.create_task(pods.run(pod_request(config)))
            await asyncio.sleep(delay)
            task.cancel()
            try:
                sandbox = await task
            except asyncio.CancelledError:
                cancelled += 1
                assert pod_leftovers(env, "cancel") == NOTHING, f"cancelled after {delay} s"
            else:
                await pods.remove(sandbox.id)
                assert pod_leftovers(env, "cancel") == NOTHING, f"removed after {delay} s"
        assert cancelled > 0


async def test_a_host_side_failure_during_add_undoes_both_sides(tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    hanging_cni_plugin(faults, PLUGIN)
    dirs = f'plugin_dirs = ["{faults}", "/opt/cni/bin", "/usr/lib/cni"]\nplugin_timeout = "10s"\n'
    async with crid_env(tmp_path, network_lines=dirs, extra_plugins=[{"type": PLUGIN}]) as env:
        ctx = env.daemon.context
        assert ctx is not None
        # The pods' files directory is a file: writing the pod's files fails beside ADD.
        blocker = ctx.layout.sandbox_dir("x").parent
        blocker.rmdir()  # made (empty) at start-up
        blocker.write_text("in the way\n")
        name = "long"
        config = pod_config(env, name)
        (faults / "hang-ADD").touch()
        run = asyncio.create_task(run_pod(env, config))
        calls = faults / "calls"
        for _ in range(500):
            if calls.exists() and " ADD " in calls.read_text():
                break
            await asyncio.sleep(0.01)
        assert leases(env), "the bridge plugin leased an address before the hanging one"
        await asyncio.sleep(0.2)  # the host side has failed by now; ADD still runs
        assert not run.done()
        (faults / "hang-ADD").unlink()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await run
        assert "sandboxes" in (info.value.details() or ""), info.value.details()
        blocker.unlink()
        blocker.mkdir()
        assert pod_leftovers(env, name) == NOTHING
        assert " DEL " in calls.read_text()  # the finished ADD was undone


async def test_remove_after_stop_does_not_run_the_plugins_again(tmp_path: Path) -> None:
    faults = tmp_path / "faults"
    hanging_cni_plugin(faults, PLUGIN)
    dirs = f'plugin_dirs = ["{faults}", "/opt/cni/bin", "/usr/lib/cni"]\n'
    async with crid_env(tmp_path, network_lines=dirs, extra_plugins=[{"type": PLUGIN}]) as env:
        calls = faults / "calls"
        stopped_first = await run_pod(env, pod_config(env, "a"))
        removed_only = await run_pod(env, pod_config(env, "b"))
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=stopped_first))
        for pod_id in (stopped_first, removed_only):
            await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        lines = calls.read_text().splitlines()
        for pod_id in (stopped_first, removed_only):
            assert sum(line.endswith(f" DEL {pod_id}") for line in lines) == 1, lines
        assert leases(env) == []


async def test_remove_of_a_pod_stop_never_detached_still_deletes_its_lease(
    tmp_path: Path,
) -> None:
    async with crid_env(tmp_path) as env:
        ctx = env.daemon.context
        assert ctx is not None
        pod_id = await run_pod(env, pod_config(env, "lost"))
        assert len(leases(env)) == 1
        # As start-up marks a pod whose namespaces a reboot took: NOTREADY, which Stop
        # skips; its lease and cached result stay until Remove's DEL.
        sandbox = ctx.registry.sandbox(pod_id)
        await ctx.registry.save_sandbox(dataclasses.replace(sandbox, state=SandboxState.NOTREADY))
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        assert not ctx.registry.sandbox(pod_id).network_detached
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert leases(env) == []
        assert pod_leftovers(env, "lost") == NOTHING


async def test_remove_takes_away_every_container_of_the_pod_and_the_pod(tmp_path: Path) -> None:
    """Running containers of a pod are removed together with it (at once, each with its
    runtime container, root filesystem and bundle)."""
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "many")
        pod_id = await run_pod(env, pod)
        ids = [
            await start_container(env, pod_id, pod, container_config(f"c{n}", ["sleep 600"]))
            for n in range(3)
        ]
        ctx = env.daemon.context
        assert ctx is not None
        bundles = [Path(ctx.registry.container(cid).bundle) for cid in ids]
        assert all(bundle.is_dir() for bundle in bundles)
        await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        listed = await env.stub.ListContainers(api_pb2.ListContainersRequest())
        assert [c.id for c in listed.containers if c.pod_sandbox_id == pod_id] == []
        assert not any(bundle.exists() for bundle in bundles)
        assert not {c.id for c in ctx.store.store.list_containers()} & set(ids)
        pods = await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())
        assert pod_id not in [p.id for p in pods.items]


async def test_steps_run_together_all_end_before_the_first_failure_is_raised() -> None:
    """``_all``: every step runs to its end; the first failure that is not a
    cancellation is raised (RunPodSandbox's two sides, RemovePodSandbox's removals)."""
    from crid.sandbox.manager import _all

    ended: list[str] = []

    async def step(name: str, delay: float, error: BaseException | None = None) -> str:
        await asyncio.sleep(delay)
        ended.append(name)
        if error is not None:
            raise error
        return name

    assert await _all([step("a", 0.02), step("b", 0.0)]) == ["a", "b"]
    ended.clear()
    with pytest.raises(ValueError, match="bad"):
        await _all(
            [
                step("cancelled", 0.0, asyncio.CancelledError()),
                step("failed", 0.01, ValueError("bad")),
                step("slow", 0.05),
            ]
        )
    assert sorted(ended) == ["cancelled", "failed", "slow"]
