"""Which cgroup controllers containers can use on this host, read once at start.

The kernel may know a controller (/proc/cgroups) that no hierarchy mounts: on a v1 or
hybrid host only the mounted v1 hierarchies count (runc's v1 manager sets limits there
and fails on a controller without one); on a v2 host the controllers listed in the
root's ``cgroup.controllers`` count, since runc enables every one of them down to the
container's cgroup. Swap is accounted when the memory controller has its swap file:
v1 ``memory.memsw.limit_in_bytes`` in the memory root, v2 ``memory.swap.max`` in a
non-root cgroup (it does not exist in the root), as the kubelet checks.
"""

from __future__ import annotations

from pathlib import Path

from crid.cgroups.hierarchy import Hierarchies
from ocispec.generate import CgroupControllers

__all__ = ["detect_controllers"]


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _own_v2_cgroup() -> str:
    """This process's cgroup v2 path, from /proc/self/cgroup ("" when unknown)."""
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


def _v2_swap(root: Path, own_cgroup: str) -> bool:
    """Whether ``memory.swap.max`` exists in a non-root cgroup: ours, else any child."""
    relative = own_cgroup.strip("/")
    if relative:
        return (root / relative / "memory.swap.max").exists()
    try:
        children = [entry for entry in root.iterdir() if entry.is_dir()]
    except OSError:
        return False
    return any((child / "memory.swap.max").exists() for child in children)


def detect_controllers(
    hierarchies: Hierarchies, *, own_cgroup: str | None = None
) -> CgroupControllers:
    """The controllers of ``hierarchies`` (blocking reads of a few small files).

    ``own_cgroup``: this process's v2 cgroup (None: read from /proc/self/cgroup).
    """
    if hierarchies.v1:
        available = frozenset(name for name in hierarchies.v1 if not name.startswith("name="))
        memory = hierarchies.v1.get("memory")
        swap = memory is not None and (memory / "memory.memsw.limit_in_bytes").exists()
        return CgroupControllers(available=available, unified=False, swap=swap)
    root = hierarchies.v2
    if root is None:
        return CgroupControllers(available=frozenset(), unified=False, swap=False)
    available = frozenset(_read(root / "cgroup.controllers").split())
    own = _own_v2_cgroup() if own_cgroup is None else own_cgroup
    swap = "memory" in available and _v2_swap(root, own)
    return CgroupControllers(available=available, unified=True, swap=swap)
