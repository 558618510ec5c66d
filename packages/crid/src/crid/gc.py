"""Garbage collection of what failures leave: store blobs and layers, CNI attachments.

A pull that fails or is cancelled leaves blobs it downloaded, and layers it unpacked
before a later one failed; a crash between a CNI ADD and the pod record leaves an
attachment (and its IPAM address) that no pod owns. Nothing refers to them, so nothing
else would ever remove them. The collector runs:

- at start, once recovery has settled the records and before the socket serves: a CNI
  GC against the pods crid knows (awaited, so no RunPodSandbox can race it), and a
  store GC in the background;
- after every failed pull: a store GC.

Store GCs use no grace period: every pull crid runs holds its blobs through its store
sink (``ocistore.StorePullSink``), and the store lock keeps other processes out, so an
unheld unreferenced blob is garbage. Requests coalesce: while a GC runs, any number of
new requests lead to one more run, never to a queue. Store GCs run in the background;
they never delay the socket or an RPC's answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from ocinet import NetError, PodNetwork
from ocistore import AsyncStore
from ocistore.errors import StoreError

__all__ = ["Collector"]

_log = logging.getLogger(__name__)


class Collector:
    """Runs store and network GCs in the background, one at a time each."""

    def __init__(
        self,
        *,
        store: AsyncStore,
        network: PodNetwork,
        live_pods: Callable[[], Iterable[str]],
    ) -> None:
        self._store = store
        self._network = network
        self._live_pods = live_pods
        self._store_task: asyncio.Task[None] | None = None
        self._store_again = False
        #: Completed store GCs (for tests and logs).
        self.store_runs = 0

    def collect_store(self) -> None:
        """Ask for a store GC soon (coalesced with one already asked for)."""
        if self._store_task is not None and not self._store_task.done():
            self._store_again = True
            return
        self._store_task = asyncio.get_running_loop().create_task(self._run_store())

    async def wait(self) -> None:
        """Wait for the GCs asked for so far (tests; shutdown)."""
        while True:
            task = self._store_task
            if task is None or task.done():
                return
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Let a GC in progress finish (its thread cannot be interrupted), ask no more."""
        self._store_again = False
        await self.wait()

    async def _run_store(self) -> None:
        while True:
            self._store_again = False
            try:
                layers, blobs = await self._store.gc(blob_grace=0)
            except StoreError as err:
                _log.warning("store GC failed: %s", err)
            else:
                self.store_runs += 1
                if layers or blobs:
                    _log.info("store GC removed %d layers and %d blobs", layers, blobs)
            if not self._store_again:
                return

    async def collect_network(self) -> None:
        """DEL every cached CNI attachment of a pod crid does not know, then CNI GC."""
        valid = [(pod, "eth0") for pod in self._live_pods()]
        try:
            await self._network.gc(valid)
        except NetError as err:
            # No network configured yet, or a plugin that failed: the next start retries.
            _log.info("CNI GC skipped: %s", err)
