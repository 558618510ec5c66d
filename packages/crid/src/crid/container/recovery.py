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
import contextlib
import logging
import shutil

from crid.container.manager import Containers, remove_rootfs
from crid.errors import ContainerNotFoundError, CridError
from crid.oci import remove_attach_link
from crid.state import ContainerState

__all__ = ["recover_containers"]

_log = logging.getLogger(__name__)


async def recover_containers(containers: Containers) -> None:
    """Reconcile every container record with its runtime state and files."""
    ctx = containers.ctx
    for record in list(ctx.registry.containers()):
        if record.state is ContainerState.UNKNOWN:
            _log.warning("removing half-created container %s", record.id)
            await containers.cleanup(record)
            continue
        if record.state is ContainerState.EXITED:
            continue
        if await containers.record_exit(record.id) is not None:
            continue
        try:
            state = await ctx.handler(record.runtime_handler).runtime.state(record.id)
        except ContainerNotFoundError:
            await containers.mark_lost(record, "the container disappeared while crid was down")
            continue
        except CridError as err:
            _log.warning("cannot read the state of %s: %s", record.id, err)
            continue
        # Stopped without an exit file: conmon died with it (a second look in case it
        # has just written one).
        if state.status == "stopped" and await containers.record_exit(record.id) is None:
            await containers.mark_lost(record, "the container stopped without an exit code")
        # Started, but crid died before it recorded so: it is running.
        if record.state is ContainerState.CREATED and state.status == "running":
            await containers.mark_started(record)
    await _remove_orphans(containers)


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
    for bundle in entries:
        if bundle.name in known:
            continue
        _log.warning("removing orphaned bundle %s", bundle)
        with contextlib.suppress(CridError):
            await ctx.handler().runtime.delete(bundle.name, force=True)
        await remove_rootfs(ctx, bundle.name)
        await asyncio.to_thread(shutil.rmtree, bundle, True)
        (ctx.layout.exits / bundle.name).unlink(missing_ok=True)
        await asyncio.to_thread(remove_attach_link, attach, bundle.name)
    # Attach links of containers that are gone (crid died after conmon made one).
    links = await asyncio.to_thread(lambda: list(attach.iterdir()) if attach.is_dir() else [])
    for link in links:
        if link.name not in known and link.is_symlink():
            _log.warning("removing orphaned attach link %s", link)
            await asyncio.to_thread(remove_attach_link, attach, link.name)
