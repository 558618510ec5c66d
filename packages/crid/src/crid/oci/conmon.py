"""The conmon container monitor: locating it and asking its version."""

from __future__ import annotations

from pathlib import Path

from crid.oci._exec import find_binary, version_line

__all__ = ["conmon_binary", "conmon_version"]


def conmon_binary(configured: str) -> Path | None:
    """The conmon binary (``configured`` or from PATH), or None when it is not installed."""
    return find_binary(configured, "conmon")


async def conmon_version(binary: Path, *, timeout: float = 5.0) -> str:
    """The first line of ``--version`` (e.g. ``conmon version 2.1.6``)."""
    return await version_line(binary, timeout=timeout)
