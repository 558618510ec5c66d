"""Reading small cgroup files: raw os calls, as they are read for every container every
second; a missing file or an unexpected text is "unknown" (None or empty), never an error."""

from __future__ import annotations

import os
from collections.abc import Container
from pathlib import Path

from crid.cgroups.hierarchy import Hierarchies

__all__ = ["cgroup_file", "read_int", "read_keyed", "read_text"]


def read_text(path: str | Path | None) -> str | None:
    """A small file's text, or None when it cannot be read."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 65536).decode()
    except OSError:
        return None
    finally:
        os.close(fd)


def read_int(path: str | Path | None) -> int | None:
    """A file holding one integer; ``max`` (v2's "no limit") and garbage are None."""
    raw = read_text(path)
    if raw is None:
        return None
    text = raw.strip()
    try:
        return int(text)
    except ValueError:
        return None


def read_keyed(path: str | Path | None, keys: Container[str] | None = None) -> dict[str, int]:
    """``key value`` lines (``memory.stat``, ``cpu.stat``, ``memory.events``...); only
    ``keys`` when given (v1's ``memory.stat`` has 40 lines, of which stats need 4)."""
    raw = read_text(path)
    if raw is None:
        return {}
    values: dict[str, int] = {}
    for line in raw.splitlines():
        key, _, value = line.partition(" ")
        if keys is not None and key not in keys:
            continue
        try:
            values[key] = int(value)
        except ValueError:
            continue
    return values


def cgroup_file(hierarchies: Hierarchies, controller: str, cgroup: str, name: str) -> str | None:
    """The path of ``name`` in ``cgroup`` of ``controller``'s hierarchy (None: not mounted)."""
    directory = hierarchies.controller_dir(controller, cgroup)
    return f"{directory}/{name}" if directory is not None else None
