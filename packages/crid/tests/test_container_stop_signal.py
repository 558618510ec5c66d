"""StopContainer (and StopPodSandbox, for an infra container) signals the init without
spawning the runtime (crid.oci.init_signal), except SIGKILL for a container that shares
the pod's PID namespace: that goes through ``runc kill``. The runtime is runc behind a
wrapper that logs every subcommand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crid._cri.v1 import api_pb2
from crid.oci.init_signal import start_time

from ._lifecycle import (
    container_config,
    crid_env,
    pod_config,
    run_pod,
    start_container,
    status,
    wait_for_comm,
    wait_for_text,
)
from .test_sandbox_infra import infra_lines, infra_pid

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]


def logging_runc(tmp: Path) -> tuple[str, Path]:
    """``[crid.runtime]`` lines for a runc that logs its subcommands, and the log."""
    runc = shutil.which("runc")
    assert runc is not None
    log = tmp / "runc-calls"
    wrapper = tmp / "bin" / "runc"
    wrapper.parent.mkdir()
    # the subcommand follows the global options (--root=..., --systemd-cgroup)
    wrapper.write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do case "$arg" in\n'
        f'  -*) ;;\n  *) echo "$arg" >> "{log}"; break;;\nesac; done\n'
        f'exec {runc} "$@"\n'
    )  # fmt: skip
    wrapper.chmod(0o755)
    return f'[crid.runtime.runtimes.runc]\nruntime_path = "{wrapper}"\n', log


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("shared", [False, True], ids=["own-pid-ns", "pod-pid-ns"])
async def test_only_the_sigkill_of_a_shared_pid_namespace_runs_runc_kill(
    tmp_path: Path, shared: bool
) -> None:
    lines, log = logging_runc(tmp_path)
    pid = api_pb2.POD if shared else api_pb2.CONTAINER
    async with crid_env(tmp_path, lines) as env:
        assert env.daemon.context is not None
        registry = env.daemon.context.registry
        pod = pod_config(env, pid=pid)
        pod_id = await run_pod(env, pod)
        # SIGTERM, trapped: the container exits with the code its trap chose.
        script = "trap 'exit 3' TERM; echo ready; while :; do sleep 0.05; done"
        cid = await start_container(env, pod_id, pod, container_config("trap", [script], pid=pid))
        record = registry.container(cid)
        assert record.init_started == start_time(record.pid) > 0
        assert record.shares_pid_namespace is shared
        await wait_for_text(tmp_path / "logs" / "web" / "trap.log", "ready")
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=10))
        assert (await status(env, cid)).exit_code == 3
        assert "kill" not in calls(log)
        # SIGKILL at once (timeout 0): crid's own for a PID namespace of its own; the
        # runtime's for a shared one (runc >= 1.2 then kills its other processes too)
        sleeper = container_config("sleep", ["exec sleep 60"], pid=pid)
        killed = await start_container(env, pod_id, pod, sleeper)
        await wait_for_comm(env, killed, "sleep")
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=killed, timeout=0))
        assert (await status(env, killed)).exit_code == 137
        assert calls(log).count("kill") == (1 if shared else 0)
        assert calls(log).count("create") == 2  # the log does see the runtime's calls


async def test_the_infra_container_is_signalled_without_the_runtime(tmp_path: Path) -> None:
    lines, log = logging_runc(tmp_path)
    async with crid_env(tmp_path, infra_lines() + lines) as env:
        ctx = env.lifecycle.ctx
        pod_id = await run_pod(env, pod_config(env))
        pid = await infra_pid(env, pod_id)
        sandbox = ctx.registry.sandbox(pod_id)
        assert sandbox.infra_pid == pid and sandbox.infra_started == start_time(pid) > 0
        await env.stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        assert (ctx.layout.exits / pod_id).read_text().strip() == "0"  # its SIGTERM trap
        assert "kill" not in calls(log)
        assert "start" in calls(log)  # the log does see the runtime's calls
