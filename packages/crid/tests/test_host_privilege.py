"""What a CRI client or a host user must not be able to do to the node (issue: hostile input).

Each test attacks a real daemon (real runc, conmon, overlayfs, CNI): a host user
reaching into crid's directories, a log path aimed at a host file, a privileged
container in an unprivileged pod, and cgroup parents that leave the hierarchy.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import subprocess
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.cgroups import Hierarchies, check_cgroup_parent, remove_pod_cgroup
from crid.errors import InvalidConfigError

from ._lifecycle import (
    container_config,
    crid_env,
    pod_config,
    run_pod,
    start_container,
)

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/usr/lib/cni/bridge")]


def _as_nobody(paths: list[str]) -> dict[str, str]:
    """Try to list or read each path as the host user ``nobody``: "ok" or "denied".

    busybox-static does the reading: the test's own Python lives where nobody cannot go.
    """
    nobody = pwd.getpwnam("nobody")

    def drop() -> None:
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    outcome = {}
    for path in paths:
        argv = ["ls", path] if Path(path).is_dir() else ["head", "-c", "1", path]
        done = subprocess.run(
            ["/bin/busybox", *argv],
            capture_output=True,
            check=False,
            preexec_fn=drop,
            cwd="/",
        )
        outcome[path] = "ok" if done.returncode == 0 else "denied"
    return outcome


async def test_a_host_user_reaches_nothing_under_root_or_runroot(tmp_path: Path) -> None:
    # tmp_path's own parents are 0700 (pytest); let nobody walk down to crid's dirs, so
    # that only crid's own modes stand between the user and its files.
    for parent in (tmp_path, *tmp_path.parents):
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)
    async with crid_env(tmp_path) as env:
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        cid = await start_container(env, pod_id, pod, container_config("c", ["sleep 60"]))
        assert env.daemon.context is not None
        layout = env.daemon.context.layout
        rootfs = Path(env.daemon.context.store.store.root)
        merged = [p for p in (rootfs / "containers").rglob("merged") if p.is_dir()]
        assert merged, "the container's root filesystem is not under the store"
        targets = [
            layout.root,
            layout.root / "state.db",
            rootfs,
            rootfs / "layers",
            merged[0],
            merged[0] / "bin" / "busybox",
            layout.namespaces,
            layout.exits,
            layout.attach,
            layout.bundle(cid),
            layout.bundle(cid) / "config.json",
            layout.sandbox_dir(pod_id),
            layout.runroot / "sandboxes",
            layout.runroot / "containers",
        ]
        outcome = _as_nobody([str(p) for p in targets])
        reachable = {path: result for path, result in outcome.items() if result == "ok"}
        assert not reachable, reachable
        # runroot itself may be entered (the socket is there) but not listed.
        assert _as_nobody([str(layout.runroot)]) == {str(layout.runroot): "denied"}
        assert layout.runroot.stat().st_mode & 0o777 == 0o711
        assert layout.root.stat().st_mode & 0o777 == 0o700


async def test_log_paths_stay_inside_the_pod_log_directory(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        victim = tmp_path / "host-file"
        victim.write_text("untouched\n")
        outside = tmp_path / "elsewhere" / "x.log"
        (tmp_path / "logs" / "web").mkdir(parents=True, exist_ok=True)
        link = tmp_path / "logs" / "web" / "link.log"
        link.symlink_to(victim)
        for bad in (str(victim), str(outside), "../../host-file", "a/../../b.log", "link.log"):
            config = container_config(f"bad{secrets.token_hex(2)}", ["true"])
            config.log_path = bad
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await env.stub.CreateContainer(
                    api_pb2.CreateContainerRequest(
                        pod_sandbox_id=pod_id, config=config, sandbox_config=pod
                    )
                )
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
            assert "log" in (info.value.details() or "")
        assert victim.read_text() == "untouched\n"
        assert not outside.exists()
        # An absolute path inside the pod's log directory is accepted (as CRI-O does).
        inside = Path(pod.log_directory) / "abs" / "0.log"
        config = container_config("abs", ["echo hello"])
        config.log_path = str(inside)
        await start_container(env, pod_id, pod, config)
        for _ in range(100):
            if inside.exists() and "hello" in inside.read_text():
                break
            await asyncio.sleep(0.05)
        assert "hello" in inside.read_text()


async def test_a_privileged_container_needs_a_privileged_pod(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "plain")
        pod_id = await run_pod(env, pod)
        config = container_config("priv", ["sleep 60"])
        config.linux.security_context.privileged = True
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=config, sandbox_config=pod
                )
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "privileged pod" in (info.value.details() or "")
        listed = await env.stub.ListContainers(api_pb2.ListContainersRequest())
        assert not listed.containers

        allowed = pod_config(env, "allowed")
        allowed.linux.security_context.privileged = True
        allowed_id = await run_pod(env, allowed)
        await start_container(env, allowed_id, allowed, config)


def test_cgroup_parent_names_are_checked() -> None:
    for good in ("/kubepods/besteffort/pod1", "kubepods/pod2", "", "a.slice:crid:x"):
        assert check_cgroup_parent(good) == good
    for bad in ("/", "//", "/kubepods/../..", "../x", "/a/./b", "/a//b", "/a\0b", "x" * 2000):
        with pytest.raises(InvalidConfigError):
            check_cgroup_parent(bad)


async def test_pod_cgroup_parents_cannot_leave_the_hierarchy(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        for bad in ("/../../escape", f"/{env.cgroup_parent}/../..", "/"):
            config = pod_config(env, f"p{secrets.token_hex(2)}")
            config.linux.cgroup_parent = bad
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await run_pod(env, config)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
            assert "cgroup_parent" in (info.value.details() or "")


async def test_pod_removal_keeps_cgroups_that_are_not_crids(tmp_path: Path) -> None:
    """A pod whose parent is shared (here with a sibling cgroup of someone else's)."""
    hierarchies = Hierarchies.detect()
    shared = f"crid-test-shared-{secrets.token_hex(3)}"
    hierarchies.create(f"{shared}/someone-else")
    try:
        async with crid_env(tmp_path) as env:
            pod = pod_config(env)
            pod.linux.cgroup_parent = f"/{shared}"
            pod_id = await run_pod(env, pod)
            cid = await start_container(env, pod_id, pod, container_config("c", ["sleep 60"]))
            await env.stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
            for root in hierarchies.roots():
                assert (root / shared / "someone-else").is_dir(), root
                assert not (root / shared / f"crid-{cid}").exists(), root
        # Once the other cgroup is gone, the pod parent itself is removed when empty.
        remove_pod_cgroup(hierarchies, f"/{shared}/someone-else")
        remove_pod_cgroup(hierarchies, f"/{shared}")
        assert not any((root / shared).exists() for root in hierarchies.roots())
    finally:
        hierarchies.remove(shared)
