"""Real pods and containers for the observation tests (stats, events, metrics, runtime-wide).

The lifecycle RPCs are another module's job, so these helpers build what RunPodSandbox and
CreateContainer would leave behind, with the same parts crid uses: a pod cgroup, a busybox
image in the daemon's ocistore, an ocistore container as root filesystem, a config from
``ocispec.generate``, the container created by conmon + runc in its own cgroup, and the
registry records that describe them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from crid._cri.v1 import api_pb2
from crid.cgroups import container_cgroup_path
from crid.context import Context
from crid.oci import ConmonOptions
from crid.state import Container, ContainerMeta, ContainerState, PodMeta, Sandbox, SandboxState
from ociimage.testing import busybox_image
from ocispec.generate import (
    ContainerOptions,
    NamespaceOption,
    NamespaceOptions,
    ResourceOptions,
    generate,
)
from ocispec.image import ExecutionConfig
from ocistore.testing import load_built

IMAGE = "crid-test/busybox:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BUILT = busybox_image()


def new_id() -> str:
    return secrets.token_hex(32)


async def ensure_image(ctx: Context) -> None:
    """Load the busybox image into the daemon's store (once per store)."""
    images = await ctx.store.list_images()
    if not any(IMAGE in image.names for image in images):
        await asyncio.to_thread(load_built, ctx.store.store, _BUILT, [IMAGE])


@contextlib.asynccontextmanager
async def pod(
    ctx: Context, *, labels: dict[str, str] | None = None, name: str = ""
) -> AsyncIterator[Sandbox]:
    """A READY sandbox record with its own pod cgroup (removed afterwards)."""
    sandbox_id = new_id()
    parent = f"/crid-test-{secrets.token_hex(4)}"
    await asyncio.to_thread(ctx.hierarchies.create, parent)
    meta = PodMeta(name=name or f"pod-{sandbox_id[:8]}", uid=sandbox_id[:16], namespace="test")
    sandbox = Sandbox(
        id=sandbox_id,
        name=f"k8s_{meta.name}_{meta.namespace}_{meta.uid}_0",
        meta=meta,
        state=SandboxState.READY,
        created_at=time.time_ns(),
        labels=labels or {},
        annotations={"note": "observe"},
        cgroup_parent=parent,
    )
    await ctx.registry.save_sandbox(sandbox)
    try:
        yield sandbox
    finally:
        for container in ctx.registry.containers(sandbox_id):
            await ctx.registry.remove_container(container.id)
        await ctx.registry.remove_sandbox(sandbox_id)
        await asyncio.to_thread(ctx.hierarchies.remove, parent)


@contextlib.asynccontextmanager
async def container(
    ctx: Context,
    sandbox: Sandbox,
    command: Sequence[str],
    *,
    labels: dict[str, str] | None = None,
    resources: ResourceOptions | None = None,
    start: bool = True,
    log_dir: Path | None = None,
    stdin: bool = False,
    stdin_once: bool = False,
    tty: bool = False,
    join_pod_network: bool = False,
) -> AsyncIterator[Container]:
    """A real container of ``sandbox`` running ``command``, with its registry record.

    ``join_pod_network``: run in the pod's pinned network namespace (when it has one).
    """
    await ensure_image(ctx)
    cid = new_id()
    handler = ctx.handler()
    await ctx.store.create_container(cid, IMAGE)
    bundle = ctx.layout.bundle(cid)
    try:
        rootfs = await ctx.store.mount_container(cid)
        cgroup = container_cgroup_path(sandbox.cgroup_parent, cid, "cgroupfs")
        netns = sandbox.namespaces.get("network") if join_pod_network else None
        spec = generate(
            ContainerOptions(
                rootfs=str(rootfs),
                image=ExecutionConfig(env=[PATH_ENV]),
                command=list(command),
                cgroups_path=cgroup,
                resources=resources,
                terminal=tty,
                namespaces=NamespaceOptions(
                    network=NamespaceOption.pod(netns) if netns else NamespaceOption.private()
                ),
            )
        )
        bundle.mkdir(parents=True, exist_ok=True)
        spec.write(bundle)
        log_path = (log_dir or ctx.layout.log_dir) / f"{cid[:12]}.log"
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
        record = Container(
            id=cid,
            name=f"k8s_c{cid[:8]}_{sandbox.name}",
            sandbox_id=sandbox.id,
            meta=ContainerMeta(name=f"c{cid[:8]}"),
            state=ContainerState.CREATED,
            created_at=time.time_ns(),
            image=IMAGE,
            image_ref=IMAGE,
            labels=labels or {},
            annotations={"kind": "test"},
            log_path=str(log_path),
            pid=created.pid,
            conmon_pid=created.conmon_pid,
            bundle=str(bundle),
            runtime_handler=handler.name,
            cgroup_path=cgroup,
            config=api_pb2.ContainerConfig(
                stdin=stdin, stdin_once=stdin_once, tty=tty
            ).SerializeToString(),
        )
        if start:
            await handler.runtime.start(cid)
            record = Container(
                **{**record.__dict__, "state": ContainerState.RUNNING, "started_at": time.time_ns()}
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


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` (sync) until true."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.05)
