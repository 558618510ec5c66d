"""A pod's parent cgroup: checking the name the kubelet sends, and removing what crid left.

The name comes from whoever can reach crid's socket, and crid creates and later removes
directories under it in every hierarchy as root. So a name must stay inside the
hierarchy (no ``..``), and removal touches only what is crid's: the ``crid-*`` cgroups
of containers below the pod cgroup, then the pod cgroup itself if it is left empty. A
parent shared with other pods (``/kubepods``, say) keeps everything that is not crid's.
"""

from __future__ import annotations

import errno
import logging

from crid.cgroups.hierarchy import Hierarchies
from crid.errors import CgroupError, InvalidConfigError

__all__ = [
    "MAX_CGROUP_PARENT",
    "check_cgroup_parent",
    "check_parent_driver",
    "remove_pod_cgroup",
]

_log = logging.getLogger(__name__)

#: Longest cgroup parent accepted (the kubelet's are under 100 characters).
MAX_CGROUP_PARENT = 1024
#: Names of the cgroups crid makes below a pod cgroup (containers and the infra one).
_OWNED_PREFIX = "crid-"


def check_cgroup_parent(parent: str) -> str:
    """``parent`` unchanged if it names a cgroup below the root, else InvalidConfigError.

    Empty means "no pod cgroup". A name with ``:`` is the systemd driver's
    ``slice:prefix:name`` form and is left to that driver.
    """
    if not parent:
        return parent
    if len(parent) > MAX_CGROUP_PARENT:
        raise InvalidConfigError(
            f"cgroup_parent is {len(parent)} characters long, over {MAX_CGROUP_PARENT}"
        )
    if any(ch in parent for ch in "\0\n"):
        raise InvalidConfigError(f"cgroup_parent {parent!r} holds a NUL or newline")
    if ":" in parent:
        return parent
    parts = parent.strip("/").split("/")
    if parts == [""]:
        raise InvalidConfigError(f"cgroup_parent {parent!r} names the root cgroup")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidConfigError(
                f"cgroup_parent {parent!r} has an empty, '.' or '..' component"
            )
    return parent


def check_parent_driver(parent: str, driver: str) -> None:
    """InvalidConfigError when ``parent`` has the other cgroup driver's form.

    The kubelet names pod cgroups after its own ``cgroupDriver``: ``/kubepods/burstable/
    pod<uid>`` for cgroupfs, ``kubepods-burstable-pod<uid>.slice`` for systemd. A slice
    under cgroupfs would make a stray top-level directory nothing manages (as CRI-O, crid
    refuses it), so the two settings disagreeing is an error naming both.
    """
    if not parent:
        return
    systemd_form = ":" in parent or parent.rstrip("/").rsplit("/", 1)[-1].endswith(".slice")
    if driver == "cgroupfs" and systemd_form:
        raise InvalidConfigError(
            f"cgroup_parent {parent!r} is a systemd slice, but crid's cgroup_manager is"
            " \"cgroupfs\": set the kubelet's cgroupDriver to cgroupfs (or crid's"
            " cgroup_manager to systemd)"
        )
    if driver == "systemd" and not systemd_form:
        raise InvalidConfigError(
            f"cgroup_parent {parent!r} is a cgroupfs path, but crid's cgroup_manager is"
            " \"systemd\": set the kubelet's cgroupDriver to systemd (or crid's"
            " cgroup_manager to cgroupfs)"
        )


def remove_pod_cgroup(hierarchies: Hierarchies, parent: str, *, timeout: float = 5.0) -> None:
    """Remove crid's cgroups below ``parent``, then ``parent`` if empty, in every
    hierarchy. Blocking; idempotent; a pod cgroup still in use is left as it is."""
    relative = check_cgroup_parent(parent).strip("/")
    if not relative or ":" in relative:
        return
    roots = [root / relative for root in hierarchies.roots()]
    owned = {
        child.name
        for top in roots
        if top.is_dir()
        for child in top.iterdir()
        if child.name.startswith(_OWNED_PREFIX) and child.is_dir()
    }
    for name in sorted(owned):
        hierarchies.remove(f"{relative}/{name}", timeout=timeout)
    for top in roots:
        try:
            top.rmdir()
        except FileNotFoundError:
            pass
        except OSError as err:
            if err.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                raise CgroupError(f"cannot remove cgroup {top}: {err.strerror}") from err
            _log.debug("pod cgroup %s is still in use: left in place", top)
