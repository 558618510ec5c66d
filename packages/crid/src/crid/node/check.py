"""``crid check``: verify (and optionally repair) storage and crid's records offline.

Two layers are checked. The image store (ocistore's own check: half-done work,
blobs whose content no longer matches their digest, images missing their manifest or
config). Then crid's state database against the store: container records whose
root filesystem is gone or whose pod record is gone (records pointing at nothing),
and root filesystems no record owns. A repair drops such records (unless the
container's process still runs) and removes unowned root filesystems. Records of
half-created containers are left to the daemon's start-up recovery, which also
removes what the runtime made for them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field

from crid.config import Config
from crid.layout import Layout
from crid.state import Container, ContainerState, StateDB
from ocistore import Store, StoreCheck, StoreError, check_store

__all__ = ["NodeCheck", "check_node"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class NodeCheck:
    """The store's check and what crid's records disagree with (``repaired``: fixed)."""

    repaired: bool
    store: StoreCheck | None
    #: container id -> why its record points at nothing
    dangling_records: dict[str, str] = field(default_factory=dict)
    #: root filesystems in the store that no container or pod record owns
    orphan_rootfs: list[str] = field(default_factory=list)
    #: records a repair kept because the container's process still runs
    left_alone: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        store = self.store is not None and self.store.damaged
        return store or bool(self.dangling_records or self.orphan_rootfs)

    @property
    def clean_after(self) -> bool:
        """Whether storage is sound now: nothing found, or everything repaired."""
        if not self.damaged:
            return True
        store_ok = self.store is None or self.store.clean_after
        return self.repaired and store_ok and not self.left_alone


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dangling(
    containers: list[Container], sandbox_ids: set[str], rootfs: set[str]
) -> dict[str, str]:
    dangling = {}
    for record in containers:
        if record.state is ContainerState.UNKNOWN:
            continue  # half-created: the daemon's recovery removes it with all it made
        if record.id not in rootfs:
            dangling[record.id] = "its root filesystem is not in the store"
        elif record.sandbox_id not in sandbox_ids:
            dangling[record.id] = f"its pod {record.sandbox_id} has no record"
    return dangling


def check_node(config: Config, *, repair: bool = False) -> NodeCheck:
    """Check the node's storage; the caller holds the daemon lock (or is the daemon,
    before it opens anything)."""
    layout = Layout.from_config(config)
    store_check = (
        check_store(layout.storage, repair=repair)
        if (layout.storage / "store.db").is_file()
        else None
    )
    if not layout.state_db.is_file():
        return NodeCheck(repaired=repair, store=store_check)
    state = StateDB(layout.state_db)
    try:
        containers = state.containers()
        sandbox_ids = {sandbox.id for sandbox in state.sandboxes()}
        rootfs = set(store_check.containers) if store_check is not None else set()
        dangling = _dangling(containers, sandbox_ids, rootfs)
        owners = {record.id for record in containers} | sandbox_ids
        orphans = sorted(rootfs - owners)
        left_alone: list[str] = []
        if repair:
            by_id = {record.id: record for record in containers}
            for container_id in dangling:
                record = by_id[container_id]
                if _alive(record.pid):
                    left_alone.append(container_id)
                    continue
                state.delete_container(container_id)
                shutil.rmtree(layout.bundle(container_id), ignore_errors=True)
            if orphans:
                with Store.open(layout.storage, lock_timeout=0.0, driver="vfs") as store:
                    for container_id in orphans:
                        with contextlib.suppress(StoreError):
                            store.remove_container(container_id)
            if dangling or orphans:
                _log.warning(
                    "check repaired records dangling=%s orphan_rootfs=%s left_alone=%s",
                    sorted(dangling), orphans, left_alone,
                )  # fmt: skip
    finally:
        state.close()
    return NodeCheck(
        repaired=repair,
        store=store_check,
        dangling_records=dangling,
        orphan_rootfs=orphans,
        left_alone=left_alone,
    )
