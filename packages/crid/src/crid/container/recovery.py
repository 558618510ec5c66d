"""Start-up after a crash or restart: bring the records back in line with reality.

Containers keep running under conmon while crid is down. On start: exits written
meanwhile are recorded from the exit files; a container started just before crid died
(the runtime says running, the record still says created) is marked RUNNING; a created
or running container whose process is gone without an exit file is marked EXITED with
an explanation; a record still in UNKNOWN (crid died inside CreateContainer) is removed
with all it created; and bundle directories, root filesystems and attach links no
record owns are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

from crid.container.manager import Containers, remove_rootfs
from crid.errors import ContainerNotFoundError, CridError
from crid.oci import remove_attach_link
from crid.state import Container, ContainerState

__all__ = ["RECOVERY_CONCURRENCY", "recover_containers"]

_log = logging.getLogger(__name__)
#: Records reconciled at once at start-up (each may wait on one runtime call).
RECOVERY_CONCURRENCY = 16


async def recover_containers(containers: Containers) -> None:
    """Reconcile every container record with its runtime state and files.

    Records are reconciled concurrently (at most ``RECOVERY_CONCURRENCY`` runtime calls
    at once), so runtimes that hang cost one ``runtime_timeout`` for up to that many
    containers, not one each, before the socket serves. A container whose conmon is
    alive needs no runtime call at all: conmon reports its exit.
    """
    ctx = containers.ctx
    limit = asyncio.Semaphore(RECOVERY_CONCURRENCY)

    async def one(record: Container) -> None:
        async with limit:
            try:
                await _recover(containers, record)
            except CridError as err:
                _log.warning("cannot recover container %s: %s", record.id, err)

    await asyncio.gather(*(one(record) for record in list(ctx.registry.containers())))
    await _remove_orphans(containers)
    for record in ctx.registry.containers():
        if record.state in (ContainerState.CREATED, ContainerState.RUNNING):
            containers.conmon_watch.add(record.id, record.conmon_pid)


async def _recover(containers: Containers, record: Container) -> None:
    ctx = containers.ctx
    if record.state is ContainerState.UNKNOWN:
        _log.warning("removing half-created container %s", record.id)
        await containers.cleanup(record)
        return
    if record.state is ContainerState.EXITED:
        return
    if await containers.record_exit(record.id) is not None:
        return
    if (
        await asyncio.to_thread(_conmon_alive, record)
        and record.state is not ContainerState.CREATED
    ):
        return  # conmon writes the exit file when the container ends
    try:
        state = await ctx.handler(record.runtime_handler).runtime.state(record.id)
    except ContainerNotFoundError:
        await containers.mark_lost(record, "the container disappeared while crid was down")
        return
    # Stopped without an exit file: conmon died with it (a second look in case it
    # has just written one). A running one without conmon is handled by the watch.
    if state.status == "stopped" and await containers.record_exit(record.id) is None:
        await containers.mark_lost(record, "the container stopped without an exit code")
    # Started, but crid died before it recorded so (conmon alive or not): it is running.
    if record.state is ContainerState.CREATED and state.status == "running":
        await containers.mark_started(record)


def _conmon_alive(record: Container) -> bool:
    """Whether the record's conmon still runs (a reused pid does not count)."""
    if record.conmon_pid <= 0:
        return False
    try:
        with open(f"/proc/{record.conmon_pid}/cmdline", "rb") as handle:
            return record.id.encode() in handle.read().split(b"\0")
    except OSError:
        return False


async def _remove_orphans(containers: Containers) -> None:
    ctx = containers.ctx
    known = {record.id for record in ctx.registry.containers()}
    # A pod's infra container has the pod's id (crid.sandbox.infra owns it).
    known.update(sandbox.id for sandbox in ctx.registry.sandboxes())
    bundles = ctx.layout.bundle("x").parent
    entries = await asyncio.to_thread(
        lambda: [p for p in bundles.iterdir() if p.is_dir()] if bundles.is_dir() else []
    )
    attach = ctx.layout.attach
    limit = asyncio.Semaphore(RECOVERY_CONCURRENCY)

    async def remove(bundle: Path) -> None:
        _log.warning("removing orphaned bundle %s", bundle)
        async with limit:
            try:
                await ctx.handler().runtime.delete(bundle.name, force=True)
            except CridError as err:
                _log.debug("delete of orphan %s: %s", bundle.name, err)
        await remove_rootfs(ctx, bundle.name)
        await asyncio.to_thread(shutil.rmtree, bundle, True)
        (ctx.layout.exits / bundle.name).unlink(missing_ok=True)
        await asyncio.to_thread(remove_attach_link, attach, bundle.name)

    await asyncio.gather(*(remove(b) for b in entries if b.name not in known))
    # Attach links of containers that are gone (crid died after conmon made one).
    links = await asyncio.to_thread(lambda: list(attach.iterdir()) if attach.is_dir() else [])
    for link in links:
        if link.name not in known and link.is_symlink():
            _log.warning("removing orphaned attach link %s", link)
            await asyncio.to_thread(remove_attach_link, attach, link.name)
