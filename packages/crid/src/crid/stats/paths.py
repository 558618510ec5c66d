"""Cgroup directories of pods and containers, for the cgroupfs and the systemd driver.

cgroupfs records plain paths (``/kubepods/pod<uid>``, ``/kubepods/pod<uid>/crid-<id>``).
The systemd driver records a slice name for the pod (``kubepods-pod<uid>.slice``) and
``<slice>:<prefix>:<name>`` for a container (``...:crid:<id>``), which systemd places at
``/kubepods.slice/kubepods-pod<uid>.slice/crid-<id>.scope``.
"""

from __future__ import annotations

__all__ = ["cgroup_dir", "slice_dir"]


def slice_dir(name: str) -> str:
    """The directory of a systemd slice: ``a-b.slice`` is ``/a.slice/a-b.slice``."""
    if not name.endswith(".slice"):
        return "/" + name.strip("/")
    stem = name[: -len(".slice")]
    if stem in ("", "-"):
        return "/"
    parts = stem.split("-")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def cgroup_dir(path: str) -> str:
    """The cgroup directory (relative to a hierarchy root) of a recorded cgroup path."""
    if path.count(":") == 2:
        parent, prefix, name = path.split(":")
        base = slice_dir(parent or "system.slice").rstrip("/")
        return f"{base}/{prefix}-{name}.scope"
    if path.endswith(".slice") and "/" not in path.strip("/"):
        return slice_dir(path)
    return "/" + path.strip("/")
