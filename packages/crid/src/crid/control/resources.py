"""Changing limits after the fact: a container's through the OCI runtime's ``update``, a
pod's by writing its cgroup's files.

A container's new limits go through ocispec's ``build_resources`` (the same validation
and v1/v2 conversion as at creation), then ``runc update``. A pod's cgroup is not a
runtime container, so UpdatePodSandboxResources writes the pod cgroup's CPU (shares or
weight, quota and period), memory limit and cpuset files directly.

Both leave out what the host has no cgroup controller for (``Context.controllers``),
as CreateContainer does: a limit runc or the kernel cannot take would fail the whole
update.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from crid.cgroups import Hierarchies
from crid.cgroups.systemd_driver import set_container_properties
from crid.context import Context
from crid.errors import CgroupError, ContainerNotRunningError
from crid.state import Container, ContainerState
from crid.stats import cgroup_dir
from ocispec.generate import (
    CgroupControllers,
    ResourceOptions,
    build_resources,
    cpu_shares_to_weight,
    restrict_resources,
)

__all__ = [
    "apply_pod_resources",
    "pod_resource_files",
    "update_container_resources",
    "usable_files",
]

_log = logging.getLogger(__name__)


def _cgroup_version(hierarchies: Hierarchies) -> int:
    return 2 if hierarchies.unified else 1


async def update_container_resources(
    ctx: Context, container: Container, options: ResourceOptions
) -> dict[str, object]:
    """Apply ``options`` to a created or running container; returns what was sent."""
    if container.state not in (ContainerState.CREATED, ContainerState.RUNNING):
        raise ContainerNotRunningError(
            f"container {container.id} is {container.state.value}: only a created or running"
            " container's resources can be updated"
        )
    built = build_resources(options, cgroup_version=_cgroup_version(ctx.hierarchies))
    resources, dropped = restrict_resources(built, ctx.controllers)
    if dropped:
        _log.debug("container %s: update leaves out %s", container.id, "; ".join(dropped))
    document: dict[str, object] = resources.to_dict()
    await ctx.handler(container.runtime_handler).runtime.update(container.id, document)
    if ctx.config.crid.runtime.cgroup_manager == "systemd":
        await set_container_properties(container.id, options, unified=ctx.hierarchies.unified)
    return document


def pod_resource_files(options: ResourceOptions, *, unified: bool) -> list[tuple[str, str, str]]:
    """(controller, file, value) to write, in order, for a pod cgroup's new limits."""
    files: list[tuple[str, str, str]] = []
    shares, quota, period = options.cpu_shares, options.cpu_quota, options.cpu_period
    if unified:
        if shares:
            files.append(("cpu", "cpu.weight", str(cpu_shares_to_weight(shares))))
        if quota or period:
            limit = "max" if not quota or quota < 0 else str(quota)
            files.append(("cpu", "cpu.max", f"{limit} {period or 100000}"))
        if options.memory_limit:
            files.append(("memory", "memory.max", str(options.memory_limit)))
    else:
        if shares:
            files.append(("cpu", "cpu.shares", str(shares)))
        if period:
            files.append(("cpu", "cpu.cfs_period_us", str(period)))
        if quota:
            files.append(("cpu", "cpu.cfs_quota_us", str(quota)))
        if options.memory_limit:
            files.append(("memory", "memory.limit_in_bytes", str(options.memory_limit)))
    if options.cpuset_cpus:
        files.append(("cpuset", "cpuset.cpus", options.cpuset_cpus))
    if options.cpuset_mems:
        files.append(("cpuset", "cpuset.mems", options.cpuset_mems))
    return files


def _write(hierarchies: Hierarchies, cgroup: str, files: list[tuple[str, str, str]]) -> None:
    for controller, name, value in files:
        directory = hierarchies.controller_path(controller, cgroup)
        if directory is None:
            raise CgroupError(f"no {controller} controller is mounted for {cgroup}")
        path = Path(directory, name)
        try:
            path.write_text(value)
        except OSError as err:
            raise CgroupError(f"cannot write {value!r} to {path}: {err.strerror}") from err


def usable_files(
    files: list[tuple[str, str, str]], controllers: CgroupControllers
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The files whose controller the host has, and the names of those left out."""
    kept = [entry for entry in files if controllers.has(entry[0])]
    dropped = [
        f"{name} (no {controller} controller)"
        for controller, name, _ in files
        if not controllers.has(controller)
    ]
    return kept, dropped


async def apply_pod_resources(
    hierarchies: Hierarchies,
    cgroup_parent: str,
    options: ResourceOptions,
    controllers: CgroupControllers,
) -> list[tuple[str, str, str]]:
    """Write ``options`` to the pod cgroup (validated as for a container first); files
    of controllers the host lacks are left out. Returns what was written."""
    if not cgroup_parent:
        raise CgroupError("the pod has no cgroup of its own (no cgroup_parent)")
    build_resources(options, cgroup_version=_cgroup_version(hierarchies))  # validates
    files, dropped = usable_files(
        pod_resource_files(options, unified=hierarchies.unified), controllers
    )
    if dropped:
        _log.debug("pod cgroup %s: update leaves out %s", cgroup_parent, "; ".join(dropped))
    await asyncio.to_thread(_write, hierarchies, cgroup_dir(cgroup_parent), files)
    return files
