"""The clean-shutdown marker, as CRI-O's ``clean_shutdown_file``.

crid removes the marker as it starts and writes it (synced) as the very last step of
a clean stop. A start that finds it missing follows a crash, a SIGKILL or a power
loss: storage may hold half-written blobs, layers or records, so crid checks and
repairs it before serving (:func:`crid.node.check_node`). A first start, with no
storage yet, has nothing to check.
"""

from __future__ import annotations

import os
from pathlib import Path

from crid.config import Config

__all__ = ["clean_shutdown_path", "consume_clean_shutdown", "mark_clean_shutdown"]


def clean_shutdown_path(config: Config) -> Path:
    """``[crid] clean_shutdown_file``; empty means ``<root>/clean.shutdown``."""
    return Path(config.crid.clean_shutdown_file or f"{config.crid.root}/clean.shutdown")


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def consume_clean_shutdown(config: Config) -> bool:
    """Remove the marker (durably); whether the last stop was clean.

    A node whose storage was never created counts as clean.
    """
    marker = clean_shutdown_path(config)
    try:
        marker.unlink()
    except FileNotFoundError:
        return not (Path(config.crid.root) / "storage").exists()
    _sync_dir(marker.parent)
    return True


def mark_clean_shutdown(config: Config) -> None:
    """Write the marker and sync it and its directory: the stop is complete."""
    marker = clean_shutdown_path(config)
    marker.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_dir(marker.parent)
