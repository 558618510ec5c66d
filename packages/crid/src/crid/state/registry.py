"""The live view of every pod and container: in memory for reads, written through to disk.

List and Status RPCs read dictionaries (no I/O, no locks on the event loop); every change
is persisted by ``StateDB`` in one worker thread before the change is visible, so what the
kubelet sees has survived a crash. A new container's first record is the exception: its
creator writes it from the worker thread that then makes the container
(:meth:`Registry.reserve_container`), which saves a hop to the writer thread. Names are
reserved here: a second pod or container with the same metadata gets an error naming the
existing id. Ids resolve by exact match or by a unique prefix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from crid.errors import AmbiguousIdError, NameReservedError, NotFoundError
from crid.state.db import StateDB
from crid.state.models import Container, Sandbox

__all__ = ["CHECKPOINT_EVERY", "Registry"]

_log = logging.getLogger(__name__)

#: Writes between two checkpoints of the state database (each writes a few pages; SQLite's
#: own default checkpoints at 1,000 pages), run in the writer thread.
CHECKPOINT_EVERY = 256

_R = TypeVar("_R", Sandbox, Container)


def _resolve(records: dict[str, _R], key: str, kind: str) -> _R:
    found = records.get(key)
    if found is not None:
        return found
    if not key:
        raise NotFoundError(f"{kind} id must not be empty")
    matches = [record for rid, record in records.items() if rid.startswith(key)]
    if not matches:
        raise NotFoundError(f"{kind} {key!r} not found")
    if len(matches) > 1:
        raise AmbiguousIdError(f"{kind} id prefix {key!r} matches {len(matches)} {kind}s")
    return matches[0]


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: nothing counts any more
        loop.call_soon_threadsafe(callback)


def _log_checkpoint(done: concurrent.futures.Future[None]) -> None:
    err = done.exception()
    if err is not None:
        _log.warning("state database checkpoint failed: %s", err)


class Registry:
    """Every sandbox and container crid knows, loaded from and saved to a ``StateDB``."""

    def __init__(self, db: StateDB) -> None:
        self._db = db
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="crid-state")
        #: Writes queued for the writer thread, not finished yet (event loop only).
        self._queued = 0
        self._since_checkpoint = 0
        db.checkpoint_manually()
        self._sandboxes: dict[str, Sandbox] = {s.id: s for s in db.sandboxes()}
        self._containers: dict[str, Container] = {c.id: c for c in db.containers()}
        self._names: dict[str, str] = {}
        #: Ids of records still being created: not shown through the CRI yet.
        self._hidden: set[str] = set()
        #: Bumped by every change to the records or to what is hidden (on the event loop):
        #: while it holds, every list of records is the same, so an answer built from
        #: them may be given again (:class:`crid.services._cache.PollMemo`).
        self.changes = 0
        records: list[Sandbox | Container] = [*self._sandboxes.values()]
        records += self._containers.values()
        for record in records:
            self._names[record.name] = record.id

    @classmethod
    def open(cls, path: Path) -> Registry:
        """Open (or create) the state database at ``path`` and load it."""
        return cls(StateDB(path))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._db.close()

    async def _persist(self, write: Callable[[], None]) -> None:
        """Run ``write`` (one SQLite statement) in order with every other.

        Inline, on the caller's thread, when nothing is queued for the writer thread and
        the database is free (no thread holds it, no other process writes: it never
        waits for a lock there): an insert into the write-ahead log with
        ``synchronous=NORMAL`` is a page-cache write of a few pages (tens of
        microseconds), less than the two thread wake-ups of a hop, and the database's
        checkpoints (which fsync) run in the writer thread only. Otherwise it queues
        behind the writes before it in the writer thread.
        """
        if not self._queued and self._db.try_now(write):
            self._written()
            return
        loop = asyncio.get_running_loop()
        self._queued += 1
        job = self._writer.submit(write)
        # Counted until the writer thread is done with it (or it was cancelled before it
        # ran), not until its caller stops waiting: a cancelled caller leaves it queued.
        job.add_done_callback(lambda _: _call_soon(loop, self._dequeue))
        await asyncio.wrap_future(job)
        self._written()

    def _dequeue(self) -> None:
        self._queued -= 1

    def _written(self) -> None:
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            # Not counted as queued: it writes no record, and it holds the database's
            # lock while it runs, so writes meanwhile take the writer thread after it.
            self._since_checkpoint = 0
            self._writer.submit(self._db.checkpoint).add_done_callback(_log_checkpoint)

    # -- names ------------------------------------------------------------------------

    def _check_name(self, name: str, record_id: str, kind: str) -> None:
        existing = self._names.get(name)
        if existing is not None and existing != record_id:
            raise NameReservedError(
                f"{kind} name {name!r} is reserved by {existing}", existing_id=existing
            )

    # -- visibility -------------------------------------------------------------------

    def hide(self, record_id: str) -> None:
        """Keep a record out of the CRI's lists and statuses until :meth:`reveal`
        (a pod or container whose creation, NRI hooks included, is in progress)."""
        self._hidden.add(record_id)
        self.changes += 1

    def reveal(self, record_id: str) -> None:
        self._hidden.discard(record_id)
        self.changes += 1

    def visible(self, record_id: str) -> bool:
        return record_id not in self._hidden

    # -- sandboxes --------------------------------------------------------------------

    def sandbox(self, id_or_prefix: str) -> Sandbox:
        """The sandbox with this id or unique id prefix."""
        return _resolve(self._sandboxes, id_or_prefix, "pod sandbox")

    def find_sandbox(self, id_or_prefix: str) -> Sandbox | None:
        """Like :meth:`sandbox`, but None when there is none."""
        try:
            return self.sandbox(id_or_prefix)
        except NotFoundError:
            return None

    def sandboxes(self) -> Iterable[Sandbox]:
        return self._sandboxes.values()

    async def save_sandbox(self, sandbox: Sandbox) -> None:
        """Add or replace a sandbox (reserving its name when new)."""
        self._check_name(sandbox.name, sandbox.id, "pod sandbox")
        self._names[sandbox.name] = sandbox.id
        try:
            await self._persist(lambda: self._db.put_sandbox(sandbox))
        except BaseException:
            if sandbox.id not in self._sandboxes:
                self._names.pop(sandbox.name, None)
            raise
        self._sandboxes[sandbox.id] = sandbox
        self.changes += 1

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Forget a sandbox and free its name (idempotent)."""
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        await self._persist(lambda: self._db.delete_sandbox(sandbox_id))
        del self._sandboxes[sandbox_id]
        self._names.pop(sandbox.name, None)
        self._hidden.discard(sandbox_id)
        self.changes += 1

    # -- containers -------------------------------------------------------------------

    def container(self, id_or_prefix: str) -> Container:
        """The container with this id or unique id prefix."""
        return _resolve(self._containers, id_or_prefix, "container")

    def find_container(self, id_or_prefix: str) -> Container | None:
        """Like :meth:`container`, but None when there is none."""
        try:
            return self.container(id_or_prefix)
        except NotFoundError:
            return None

    def containers(self, sandbox_id: str | None = None) -> list[Container]:
        """All containers, or those of one sandbox."""
        if sandbox_id is None:
            return list(self._containers.values())
        return [c for c in self._containers.values() if c.sandbox_id == sandbox_id]

    async def save_container(self, container: Container) -> None:
        """Add or replace a container (reserving its name when new)."""
        if container.sandbox_id not in self._sandboxes:
            raise NotFoundError(f"pod sandbox {container.sandbox_id!r} not found")
        self._check_name(container.name, container.id, "container")
        self._names[container.name] = container.id
        try:
            await self._persist(lambda: self._db.put_container(container))
        except BaseException:
            if container.id not in self._containers:
                self._names.pop(container.name, None)
            raise
        self._containers[container.id] = container
        self.changes += 1

    def reserve_container(self, container: Container) -> None:
        """Reserve a new container's name now, before its record is written.

        Then, in order: :meth:`write_new_container` from a worker thread (nothing else
        can write this id meanwhile, so no order with the writer thread is lost), and
        :meth:`adopt_container` on the event loop once that returned; or
        :meth:`release_container` if it was never written.
        """
        if container.sandbox_id not in self._sandboxes:
            raise NotFoundError(f"pod sandbox {container.sandbox_id!r} not found")
        self._check_name(container.name, container.id, "container")
        self._names[container.name] = container.id

    def write_new_container(self, container: Container) -> None:
        """Persist the first record of a container :meth:`reserve_container` reserved
        (blocking: call it from a worker thread, never on the event loop)."""
        self._db.put_container(container)

    def adopt_container(self, container: Container) -> None:
        """Make a container :meth:`write_new_container` persisted known (not visible
        through the CRI while it is hidden)."""
        self._containers[container.id] = container
        self.changes += 1

    def release_container(self, container: Container) -> None:
        """Free the name of a reserved container whose record was never written (and
        forget that it was hidden)."""
        if container.id in self._containers:
            return
        if self._names.get(container.name) == container.id:
            del self._names[container.name]
        self._hidden.discard(container.id)
        self.changes += 1

    async def remove_container(self, container_id: str) -> None:
        """Forget a container and free its name (idempotent)."""
        container = self._containers.get(container_id)
        if container is None:
            return
        await self._persist(lambda: self._db.delete_container(container_id))
        del self._containers[container_id]
        self._names.pop(container.name, None)
        self._hidden.discard(container_id)
        self.changes += 1
