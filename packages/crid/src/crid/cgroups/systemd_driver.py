"""The systemd cgroup driver's own steps, beside what runc does with ``--systemd-cgroup``.

With ``cgroup_manager = "systemd"`` the kubelet names pod cgroups as slices
(``kubepods-besteffort-pod<uid>.slice``), and each container's ``cgroupsPath`` is
``<slice>:crid:<id>``: runc asks systemd (StartTransientUnit) for the scope
``crid-<id>.scope`` with the container's resources. crid itself places each conmon in
a scope of its own (``crid-conmon-<id>.scope``, in the pod's slice or the slice
``conmon_cgroup`` names, as CRI-O's option) and sends resource updates to systemd
(SetUnitProperties) as well as through ``runc update``, so that systemd's view of the
scope and the cgroup files agree. Every call opens its own short D-Bus connection in a
thread: jeepney's blocking connection is not shared between threads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from crid.errors import CgroupError, UnsupportedConfigError
from ocispec.generate import ResourceOptions

if TYPE_CHECKING:  # jeepney (D-Bus) loads with the first systemd call, not the daemon
    from crid.cgroups.systemd import UnitProperty

__all__ = [
    "conmon_scope",
    "container_scope",
    "place_conmon",
    "probe_systemd",
    "set_container_properties",
    "unit_properties",
]


def container_scope(container_id: str) -> str:
    """The scope runc makes for a container whose cgroupsPath is ``<slice>:crid:<id>``."""
    return f"crid-{container_id}.scope"


def conmon_scope(container_id: str) -> str:
    return f"crid-conmon-{container_id}.scope"


def probe_systemd() -> None:
    """UnsupportedConfigError unless systemd answers on the system bus (blocking)."""
    from crid.cgroups.systemd import Systemd

    try:
        with Systemd() as systemd:
            state = systemd.active_state("-.slice")
    except CgroupError as err:
        raise UnsupportedConfigError(
            f'[crid.runtime] cgroup_manager = "systemd" needs systemd as the init system: {err}'
        ) from err
    if state != "active":
        raise UnsupportedConfigError(f"systemd's root slice is {state}, not active")


def unit_properties(options: ResourceOptions, *, unified: bool) -> list[UnitProperty]:
    """systemd's names for the resources runc also writes (v1 or v2 spellings)."""
    props: list[UnitProperty] = []
    if unified and options.cpu_weight is not None:
        props.append(("CPUWeight", ("t", options.cpu_weight)))
    elif not unified and options.cpu_shares is not None:
        props.append(("CPUShares", ("t", options.cpu_shares)))
    if options.cpu_quota is not None and options.cpu_quota > 0:
        period = options.cpu_period or 100_000
        per_second = options.cpu_quota * 1_000_000 // period
        props.append(("CPUQuotaPerSecUSec", ("t", per_second)))
    if options.memory_limit is not None and options.memory_limit > 0:
        props.append(("MemoryMax" if unified else "MemoryLimit", ("t", options.memory_limit)))
    if options.pids_limit is not None and options.pids_limit > 0:
        props.append(("TasksMax", ("t", options.pids_limit)))
    return props


def _start_conmon_scope(container_id: str, pid: int, slice_: str) -> None:
    from crid.cgroups.systemd import Systemd

    with Systemd() as systemd:
        systemd.start_scope(conmon_scope(container_id), [pid], [], slice_=slice_)


async def place_conmon(container_id: str, conmon_pid: int, *, pod_slice: str, setting: str) -> None:
    """Move conmon into its own scope: in the pod's slice (``setting`` "pod") or in the
    slice ``setting`` names. systemd drops the scope once conmon exits."""
    slice_ = (pod_slice or "system.slice") if setting == "pod" else setting
    await asyncio.to_thread(_start_conmon_scope, container_id, conmon_pid, slice_)


def _set(container_id: str, props: list[UnitProperty]) -> None:
    from crid.cgroups.systemd import Systemd

    with Systemd() as systemd:
        systemd.set_properties(container_scope(container_id), props)


async def set_container_properties(
    container_id: str, options: ResourceOptions, *, unified: bool
) -> None:
    """Tell systemd a container scope's new limits (runc update writes the files too)."""
    props = unit_properties(options, unified=unified)
    if props:
        await asyncio.to_thread(_set, container_id, props)
