"""Running containers and pods for the streaming tests (exec, attach, port-forward).

Like ``_observe``, these build what RunPodSandbox and CreateContainer would leave: a
READY sandbox (here with its own pinned network namespace, loopback up), and a container
created by conmon + runc from an ``ocispec.generate`` config, with ``--stdin`` and
``--terminal`` when asked, and its CRI config recorded (Attach checks ``stdin`` there).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Sequence

from crid._cri.v1 import api_pb2
from crid.cgroups import container_cgroup_path
from crid.context import Context
from crid.oci import ConmonOptions
from crid.server import Daemon
from crid.state import Container, ContainerMeta, ContainerState, Sandbox
from ocinet import NamespaceKind, pin_pod_namespaces
from ocispec.generate import ContainerOptions, NamespaceOption, NamespaceOptions, generate
from ocispec.image import ExecutionConfig

from ._observe import IMAGE, PATH_ENV, ensure_image, new_id, pod

__all__ = ["ctx_of", "net_pod", "running", "url_of"]


def ctx_of(daemon: Daemon) -> Context:
    assert daemon.context is not None
    return daemon.context


def url_of(daemon: Daemon) -> str:
    assert daemon.streaming is not None
    return daemon.streaming.base_url


@contextlib.asynccontextmanager
async def net_pod(ctx: Context) -> AsyncIterator[Sandbox]:
    """A READY sandbox with a pinned network namespace of its own (loopback up)."""
    async with pod(ctx) as sandbox:
        name = f"stream-{secrets.token_hex(4)}"
        pinned = await asyncio.to_thread(
            pin_pod_namespaces, ctx.layout.namespaces, name, (NamespaceKind.NET,)
        )
        try:
            assert pinned.net is not None
            await pinned.net.exec(["ip", "link", "set", "lo", "up"], check=True)
            record = dataclasses.replace(sandbox, namespaces={"network": str(pinned.net.path)})
            await ctx.registry.save_sandbox(record)
            yield record
        finally:
            await asyncio.to_thread(pinned.remove)


@contextlib.asynccontextmanager
async def running(
    ctx: Context,
    sandbox: Sandbox,
    command: Sequence[str],
    *,
    stdin: bool = False,
    stdin_once: bool = False,
    tty: bool = False,
) -> AsyncIterator[Container]:
    """A running container of ``sandbox`` (in its network namespace, if it has one)."""
    await ensure_image(ctx)
    cid = new_id()
    handler = ctx.handler()
    await ctx.store.create_container(cid, IMAGE)
    bundle = ctx.layout.bundle(cid)
    try:
        rootfs = await ctx.store.mount_container(cid)
        cgroup = container_cgroup_path(sandbox.cgroup_parent, cid, "cgroupfs")
        netns = sandbox.namespaces.get("network")
        spec = generate(
            ContainerOptions(
                rootfs=str(rootfs),
                image=ExecutionConfig(env=[PATH_ENV]),
                command=list(command),
                cgroups_path=cgroup,
                terminal=tty,
                namespaces=NamespaceOptions(
                    network=NamespaceOption.pod(netns) if netns else NamespaceOption.private()
                ),
            )
        )
        bundle.mkdir(parents=True, exist_ok=True)
        spec.write(bundle)
        log_path = ctx.layout.log_dir / f"{cid[:12]}.log"
        options = ConmonOptions(
            container_id=cid,
            name=f"k8s_{cid[:12]}",
            bundle=bundle,
            log_path=log_path,
            exit_dir=ctx.layout.exits,
            socket_dir=ctx.layout.attach,
            terminal=tty,
            stdin=stdin,
            stdin_once=stdin_once,
        )
        created = await handler.conmon.create(options)
        await handler.runtime.start(cid)
        config = api_pb2.ContainerConfig(stdin=stdin, stdin_once=stdin_once, tty=tty)
        record = Container(
            id=cid,
            name=f"k8s_c{cid[:8]}_{sandbox.name}",
            sandbox_id=sandbox.id,
            meta=ContainerMeta(name=f"c{cid[:8]}"),
            state=ContainerState.RUNNING,
            created_at=time.time_ns(),
            started_at=time.time_ns(),
            image=IMAGE,
            image_ref=IMAGE,
            log_path=str(log_path),
            pid=created.pid,
            conmon_pid=created.conmon_pid,
            bundle=str(bundle),
            runtime_handler=handler.name,
            cgroup_path=cgroup,
            config=config.SerializeToString(),
        )
        await ctx.registry.save_container(record)
        yield record
    finally:
        with contextlib.suppress(Exception):
            await handler.runtime.delete(cid, force=True)
        await ctx.registry.remove_container(cid)
        with contextlib.suppress(Exception):
            await ctx.store.unmount_container(cid)
        with contextlib.suppress(Exception):
            await ctx.store.remove_container(cid)
