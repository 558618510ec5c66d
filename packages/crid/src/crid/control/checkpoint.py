"""CheckpointContainer: CRIU is what checkpoints a container; crid does not drive it yet."""

from __future__ import annotations

import shutil

from crid.errors import NotSupportedError
from crid.state import Container

__all__ = ["checkpoint_container"]


def checkpoint_container(container: Container, location: str) -> None:
    """Refuse clearly: without CRIU no runtime can checkpoint, and crid has no driver for it."""
    criu = shutil.which("criu")
    if criu is None:
        raise NotSupportedError(
            f"cannot checkpoint container {container.id} to {location or '(no location)'}:"
            " checkpointing needs CRIU, which is not installed on this node"
        )
    raise NotSupportedError(
        f"cannot checkpoint container {container.id}: CRIU is installed ({criu}) but crid does"
        " not implement checkpoint/restore"
    )
