"""What a starting daemon does about the clean-shutdown marker (see :mod:`.marker`)."""

from __future__ import annotations

import logging

from crid.config import Config
from crid.errors import StateError
from crid.node.check import NodeCheck, check_node
from crid.node.marker import clean_shutdown_path, consume_clean_shutdown
from ocistore.errors import DatabaseCorruptError

__all__ = ["check_after_unclean_stop"]

_log = logging.getLogger(__name__)


def check_after_unclean_stop(config: Config) -> NodeCheck | None:
    """Consume the marker; when it was missing, check and repair storage (blocking).

    Returns the check, or None after a clean stop. Called with the daemon lock held,
    before the store and the state database are opened.
    """
    if consume_clean_shutdown(config):
        return None
    marker = clean_shutdown_path(config)
    _log.warning("crid did not stop cleanly (no %s): checking storage before serving", marker)
    try:
        result = check_node(config, repair=True)
    except (DatabaseCorruptError, StateError) as err:
        # A database that cannot be trusted is not repaired against: opening it again
        # (Context.open) refuses to start with the full explanation.
        _log.error("storage check impossible: %s", err)
        return None
    store = result.store
    _log.warning(
        "storage check after an unclean stop: damaged=%s repaired=%s half_done=%s"
        " corrupt_blobs=%d broken_images=%d dangling_records=%d orphan_rootfs=%d",
        result.damaged,
        result.clean_after,
        store is not None and store.half_done.changed,
        len(store.corrupt_blobs) if store else 0,
        len(store.broken_images) if store else 0,
        len(result.dangling_records),
        len(result.orphan_rootfs),
    )
    return result
