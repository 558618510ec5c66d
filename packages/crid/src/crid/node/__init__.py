"""Node operations that run while the daemon does not: check, repair, wipe, and the
clean-shutdown marker that makes a start after a crash check first."""

from __future__ import annotations

from crid.node.check import NodeCheck, check_node
from crid.node.marker import (
    clean_shutdown_path,
    consume_clean_shutdown,
    mark_clean_shutdown,
)
from crid.node.offline import daemon_lock, daemon_lock_path
from crid.node.startup import check_after_unclean_stop
from crid.node.wipe import WipeReport, wipe_node

__all__ = [
    "NodeCheck",
    "WipeReport",
    "check_after_unclean_stop",
    "check_node",
    "clean_shutdown_path",
    "consume_clean_shutdown",
    "daemon_lock",
    "daemon_lock_path",
    "mark_clean_shutdown",
    "wipe_node",
]
