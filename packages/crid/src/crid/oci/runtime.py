"""The OCI runtime binary (runc by default): locating it and asking its version."""

from __future__ import annotations

from pathlib import Path

from crid.config import RuntimeHandler
from crid.oci._exec import find_binary, version_line

__all__ = ["runtime_binary", "runtime_version"]


def runtime_binary(name: str, handler: RuntimeHandler) -> Path | None:
    """The handler's runtime binary, or None when it is not installed."""
    return find_binary(handler.runtime_path, name)


async def runtime_version(binary: Path, *, timeout: float = 5.0) -> str:
    """The first line of ``--version`` (e.g. ``runc version 1.1.5``)."""
    return await version_line(binary, timeout=timeout)
