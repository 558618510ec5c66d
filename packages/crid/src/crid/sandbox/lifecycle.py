"""One object per running crid that owns the pod and container lifecycles.

The RPC mixins find it with :meth:`Lifecycle.of` (one per :class:`Context`); the daemon
calls :meth:`start` once the context is open (recovery after a restart, then the exit
monitor) and :meth:`stop` before closing it. Containers keep running either way.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from crid.config import parse_duration
from crid.container.manager import Containers
from crid.container.monitor import ExitMonitor
from crid.container.recovery import recover_containers
from crid.context import Context
from crid.sandbox.manager import Pods

__all__ = ["Lifecycle"]

_log = logging.getLogger(__name__)
_ATTACHED: weakref.WeakKeyDictionary[Context, Lifecycle] = weakref.WeakKeyDictionary()


class Lifecycle:
    """Pods, containers and the exit monitor of one context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.containers = Containers(ctx)
        self.pods = Pods(ctx, self.containers)
        self.monitor = ExitMonitor(self.containers, other_exit=self.pods.infra_exited)

    @classmethod
    def of(cls, ctx: Context) -> Lifecycle:
        """The lifecycle of ``ctx`` (created on first use)."""
        found = _ATTACHED.get(ctx)
        if found is None:
            found = _ATTACHED[ctx] = cls(ctx)
        return found

    async def start(self) -> None:
        """Reconcile state left by a previous run, then watch for exits."""
        await recover_containers(self.containers)
        await self.pods.recover()
        # What a crash or failure left that no record owns: CNI attachments now, before
        # any RunPodSandbox can race the sweep; store blobs and layers in the background.
        # Bounded by one plugin_timeout in all: stale attachments whose DEL hangs must not
        # hold the socket for one timeout each (the next start sweeps what is left).
        limit = parse_duration(self.ctx.config.crid.network.plugin_timeout)
        try:
            await asyncio.wait_for(self.ctx.gc.collect_network(), limit)
        except TimeoutError:
            _log.warning("CNI GC at start took longer than %gs: stopped, retried next start", limit)
        self.ctx.gc.collect_store()
        self.monitor.start()
        await self.containers.nri.serve(self.containers)

    async def stop(self) -> None:
        await self.containers.nri.close()
        await self.monitor.stop()
        await self.containers.conmon_watch.close()
