"""CreateContainer's preparation (one worker-thread hop: image lookup, the record's first
write, root filesystem, config.json, while conmon already waits for its start byte):
what it writes, and what a failure of either side, or a cancellation at any moment,
leaves (nothing: no record, root filesystem, mount, bundle, conmon; the name is free).

The config generator's schema check is off on this path (it cost more CPU than the rest
of a create), so the config.json crid writes for a rich request is validated here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.translate import container_request
from ocispec import Schema, violations

from ._lifecycle import (
    Env,
    container_config,
    crid_env,
    is_mount,
    pod_config,
    run_pod,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]


def conmons_under(directory: Path) -> list[str]:
    """conmon processes whose command line names a path under ``directory``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"conmon") and any(str(directory).encode() in a for a in args):
            found.append(entry.name)
    return found


def leftovers(env: Env) -> dict[str, list[str]]:
    """Everything a container of ``env``'s crid could have left behind (empty: none)."""
    ctx = env.daemon.context
    assert ctx is not None
    bundles = ctx.layout.bundle("x").parent
    mounted = [
        c.id for c in ctx.store.store.list_containers() if is_mount(c.rootfs)
    ]  # fmt: skip
    return {
        "records": [c.id for c in ctx.registry.containers()],
        "rootfs": [c.id for c in ctx.store.store.list_containers()],
        "mounted": mounted,
        "bundles": [p.name for p in bundles.iterdir()] if bundles.is_dir() else [],
        "exits": [p.name for p in ctx.layout.exits.iterdir()] if ctx.layout.exits.is_dir() else [],
        "attach": [p.name for p in ctx.layout.attach.iterdir()]
        if ctx.layout.attach.is_dir()
        else [],
        "conmon": conmons_under(env.tmp),
    }


NOTHING: dict[str, list[str]] = {
    "records": [],
    "rootfs": [],
    "mounted": [],
    "bundles": [],
    "exits": [],
    "attach": [],
    "conmon": [],
}


async def test_written_config_validates_against_the_runtime_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "rich", sysctls={"net.ipv4.ip_unprivileged_port_start": "80"})
        pod_id = await run_pod(env, pod)
        config = container_config(
            "rich",
            ["sleep 60"],
            resources=api_pb2.LinuxContainerResources(
                cpu_shares=512, cpu_quota=20000, cpu_period=100000, memory_limit_in_bytes=1 << 26
            ),
            annotations={"io.kubernetes.container.terminationMessagePath": "/dev/term"},
        )
        config.envs.append(api_pb2.KeyValue(key="A", value=b"1"))
        config.working_dir = "/tmp"
        config.stop_signal = api_pb2.SIGINT
        config.mounts.append(
            api_pb2.Mount(container_path="/data", host_path=str(data), readonly=True)
        )
        sc = config.linux.security_context
        sc.capabilities.add_capabilities.append("NET_ADMIN")
        sc.capabilities.drop_capabilities.append("KILL")
        sc.run_as_user.value = 1000
        sc.readonly_rootfs = True
        sc.no_new_privs = True
        sc.seccomp.profile_type = api_pb2.SecurityProfile.RuntimeDefault
        reply = await env.stub.CreateContainer(
            api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        )
        assert env.daemon.context is not None
        record = env.daemon.context.registry.container(reply.container_id)
        written = json.loads(Path(record.bundle, "config.json").read_text())
        assert violations(written, Schema.RUNTIME_CONFIG) == []
        assert written["process"]["user"]["uid"] == 1000
        assert written["root"]["readonly"] is True
        assert record.stop_signal == signal.SIGINT
        containers = env.lifecycle.containers
        assert await containers._stop_signal(record) == signal.SIGINT
        # A record from before the field: the signal is read from the bundle's file.
        older = dataclasses.replace(record, stop_signal=0)
        Path(record.bundle, "stop-signal").write_text(str(int(signal.SIGQUIT)))
        assert await containers._stop_signal(older) == signal.SIGQUIT


@pytest.mark.parametrize("where", ["image lookup", "worker thread", "conmon"])
async def test_a_failed_create_undoes_every_step(tmp_path: Path, where: str) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "fail")
        pod_id = await run_pod(env, pod)
        config = container_config("fail", ["true"])
        if where == "image lookup":
            # In the worker thread, before the record is written; conmon is running
            # (waiting for its start byte) by then.
            config.image.image = "crid-test/not-pulled:latest"
        elif where == "worker thread":
            # The user is looked up in the mounted root filesystem's /etc/passwd, after
            # the rootfs, its mount and the bundle directory were made.
            config.linux.security_context.run_as_username = "nobody-here"
        else:
            config.command[:] = ["/no/such/program"]
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=config, sandbox_config=pod
                )
            )
        if where == "image lookup":
            assert failed.value.code() == grpc.StatusCode.NOT_FOUND
        assert leftovers(env) == NOTHING
        assert not (tmp_path / "logs" / "fail" / "fail.log").exists()
        # The name was released: the same container can be created now.
        reply = await env.stub.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id,
                config=container_config("fail", ["true"]),
                sandbox_config=pod,
            )
        )
        assert reply.container_id


async def test_a_cancelled_create_leaves_nothing_whenever_it_is_cancelled(
    tmp_path: Path,
) -> None:
    async with crid_env(tmp_path) as env:
        assert env.daemon.context is not None
        containers = env.lifecycle.containers
        pod = pod_config(env, "cancel")
        pod_id = await run_pod(env, pod)
        cancelled = 0
        # From before the worker thread starts to inside conmon's create: each delay
        # cancels a different step; none may leave anything behind.
        for attempt, delay in enumerate((0.0, 0.001, 0.003, 0.006, 0.01, 0.02, 0.04, 0.08)):
            config = container_config(f"c{attempt}", ["sleep 60"])
            task = asyncio.create_task(containers.create(container_request(pod_id, config)))
            await asyncio.sleep(delay)
            task.cancel()
            try:
                record = await task
            except asyncio.CancelledError:
                cancelled += 1
                assert leftovers(env) == NOTHING, f"cancelled after {delay} s"
                assert not (tmp_path / "logs" / "cancel" / f"c{attempt}.log").exists()
            else:
                with contextlib.suppress(Exception):
                    await containers.remove(record.id)
        assert cancelled > 0
