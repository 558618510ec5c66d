"""crid's side of NRI once a plugin has come: its records as NRI messages, plugins' answers
applied (adjustments to the OCI config being created, resource updates of other
containers, evictions), and the state new plugins synchronize with.

:class:`crid.nri.hooks.NRIHooks` loads this module, with the protocol, when the first
plugin connects or is found installed, and calls it only while some plugin is connected
or connecting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crid._nri.v1alpha1 import api_pb2 as api
from crid.context import Context
from crid.control.resources import update_container_resources
from crid.errors import CridError, InvalidConfigError
from crid.nri.adjust import apply_adjustment
from crid.nri.convert import nri_container, nri_pod, options_to_nri, resource_options
from crid.nri.endpoint import HostOptions
from crid.nri.host import NRIHost
from crid.state import Container, ContainerState, Sandbox
from ocispec.errors import SpecError
from ocispec.generate import (
    GeneratedSpec,
    ResourceOptions,
    restrict_oom_score_adj,
    restrict_resources,
)
from ocispec.runtime import Spec
from ocispec.schema import Schema, validate

if TYPE_CHECKING:
    from crid.container.manager import Containers

__all__ = ["NRIDomain"]

_log = logging.getLogger(__name__)


class NRIDomain:
    """Hook points with a plugin present, and the host's :class:`~crid.nri.host.Domain`."""

    def __init__(self, ctx: Context, containers: Containers, options: HostOptions) -> None:
        self.ctx = ctx
        self.containers = containers
        self.host = NRIHost(options, self)
        self._specs: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Disconnect the plugins, then end the evictions still running."""
        await self.host.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _background(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the host's view of crid --------------------------------------------------

    async def _spec(self, record: Container) -> dict[str, Any] | None:
        spec = self._specs.get(record.id)
        if spec is None and record.bundle:
            try:
                text = await asyncio.to_thread(Path(record.bundle, "config.json").read_text)
                spec = self._specs[record.id] = json.loads(text)
            except (OSError, ValueError):
                return None
        return spec

    async def _container(self, record: Container) -> api.Container:
        return nri_container(record, await self._spec(record))

    def _pod(self, sandbox_id: str) -> api.PodSandbox:
        sandbox = self.ctx.registry.find_sandbox(sandbox_id)
        return nri_pod(sandbox) if sandbox is not None else api.PodSandbox(id=sandbox_id)

    async def snapshot(self) -> tuple[list[api.PodSandbox], list[api.Container]]:
        pods = [nri_pod(sandbox) for sandbox in self.ctx.registry.sandboxes()]
        containers = [await self._container(c) for c in self.ctx.registry.containers()]
        return pods, containers

    async def _apply_resources(self, record: Container, options: ResourceOptions) -> None:
        """The UpdateContainerResources path: runc update, then the recorded config."""
        await update_container_resources(self.ctx, record, options)

    async def update_containers(
        self, updates: Sequence[api.ContainerUpdate]
    ) -> list[api.ContainerUpdate]:
        failed = []
        for update in updates:
            record = self.ctx.registry.find_container(update.container_id)
            try:
                if record is None:
                    raise CridError(f"no container {update.container_id}")
                await self._apply_resources(record, resource_options(update.linux.resources))
            except (CridError, SpecError) as err:
                _log.warning("NRI update of container %s failed: %s", update.container_id, err)
                if not update.ignore_failure:
                    failed.append(update)
        return failed

    async def evict_containers(self, evictions: Sequence[api.ContainerEviction]) -> None:
        for eviction in evictions:
            _log.info("NRI evicts container %s: %s", eviction.container_id, eviction.reason)
            try:
                await self.containers.stop(eviction.container_id, 0)
            except CridError as err:
                _log.warning("NRI eviction of %s failed: %s", eviction.container_id, err)

    async def _after(
        self, updates: Sequence[api.ContainerUpdate], evictions: Sequence[api.ContainerEviction]
    ) -> None:
        if updates:
            await self.update_containers(updates)
        if evictions:
            self._background(self.evict_containers(evictions))

    # -- pod hook points ----------------------------------------------------------

    async def run_pod(self, sandbox: Sandbox) -> None:
        """Before a new pod becomes READY; a plugin error fails RunPodSandbox."""
        await self.host.run_pod_sandbox(nri_pod(sandbox))

    async def stop_pod(self, sandbox: Sandbox) -> None:
        """After the pod's containers stopped, while the pod is still listed."""
        await self.host.stop_pod_sandbox(nri_pod(sandbox))

    async def remove_pod(self, sandbox: Sandbox) -> None:
        await self.host.remove_pod_sandbox(nri_pod(sandbox))

    async def update_pod(
        self, sandbox: Sandbox, overhead: ResourceOptions, resources: ResourceOptions
    ) -> None:
        """Before the pod cgroup's new limits are written; a plugin error fails it."""
        await self.host.update_pod_sandbox(
            nri_pod(sandbox), options_to_nri(overhead), options_to_nri(resources)
        )

    async def post_update_pod(self, sandbox: Sandbox) -> None:
        await self.host.post_update_pod_sandbox(nri_pod(sandbox))

    # -- container hook points ----------------------------------------------------

    async def create_container(
        self, record: Container, sandbox: Sandbox, generated: GeneratedSpec
    ) -> tuple[Container, GeneratedSpec]:
        """Before the runtime creates the container: plugins' adjustments are applied to
        its config.json (and its cgroup path, when a plugin moves it)."""
        spec = generated.spec.to_dict()
        result = await self.host.create_container(nri_pod(sandbox), nri_container(record, spec))
        if result.adjustments:
            version = 2 if self.ctx.hierarchies.unified else 1
            cdi_dirs = tuple(self.ctx.config.crid.runtime.cdi_spec_dirs)
            for label, adjust in result.adjustments:
                apply = functools.partial(
                    apply_adjustment, spec, adjust, cgroup_version=version, cdi_spec_dirs=cdi_dirs
                )
                try:
                    # CDI devices mean reading spec files and stat-ing nodes: a worker's job.
                    await asyncio.to_thread(apply) if adjust.CDI_devices else apply()
                except (CridError, SpecError) as err:
                    raise InvalidConfigError(f"NRI plugin {label}: {err}") from err
            await self._restrict_oom(spec)
            generated = await asyncio.to_thread(self._rewrite, record, generated, spec)
            spec = generated.spec.to_dict()
            cgroups_path = generated.spec.linux.cgroups_path if generated.spec.linux else ""
            if cgroups_path and cgroups_path != record.cgroup_path:
                record = dataclasses.replace(record, cgroup_path=cgroups_path)
        self._specs[record.id] = spec
        await self._after(result.updates, result.evictions)
        return record, generated

    async def _restrict_oom(self, spec: dict[str, Any]) -> None:
        """An OOM score adjustment from a plugin is clamped as the kubelet's is: a
        runtime without CAP_SYS_RESOURCE cannot go below its own score."""
        process = spec.get("process") or {}
        wanted = process.get("oomScoreAdj")
        if wanted is None:
            return
        host = await self.ctx.host_info()
        if not host.sys_resource:
            process["oomScoreAdj"] = restrict_oom_score_adj(wanted, host.oom_score_adj)

    def _rewrite(
        self, record: Container, generated: GeneratedSpec, spec: dict[str, Any]
    ) -> GeneratedSpec:
        try:
            validate(spec, Schema.RUNTIME_CONFIG)
            adjusted = Spec.from_dict(spec)
        except SpecError as err:
            raise InvalidConfigError(f"NRI adjustments make an invalid OCI config: {err}") from err
        linux = adjusted.linux
        if linux is not None and linux.resources is not None:
            kept, dropped = restrict_resources(linux.resources, self.ctx.controllers)
            if dropped:
                _log.debug("container %s: NRI resources left out: %s", record.id, dropped)
            adjusted = dataclasses.replace(
                adjusted, linux=dataclasses.replace(linux, resources=kept)
            )
        out = dataclasses.replace(generated, spec=adjusted)
        out.write(record.bundle)
        return out

    async def _container_event(self, name: str, record: Container) -> None:
        event = getattr(self.host, name)
        await event(self._pod(record.sandbox_id), await self._container(record))

    async def post_create(self, record: Container) -> None:
        await self._container_event("post_create_container", record)

    async def start(self, record: Container) -> None:
        await self._container_event("start_container", record)

    async def post_start(self, record: Container) -> None:
        await self._container_event("post_start_container", record)

    async def update(self, record: Container, resources: ResourceOptions) -> ResourceOptions | None:
        """Before UpdateContainerResources applies ``resources``: the options plugins
        want instead (an update a plugin returns for this container), or None."""
        updates, evictions = await self.host.update_container(
            self._pod(record.sandbox_id),
            await self._container(record),
            options_to_nri(resources),
        )
        own = [u for u in updates if u.container_id == record.id]
        others = [u for u in updates if u.container_id != record.id]
        await self._after(others, evictions)
        return resource_options(own[-1].linux.resources) if own else None

    async def post_update(self, record: Container) -> None:
        await self._container_event("post_update_container", record)

    async def stop(self, record: Container) -> None:
        """After the container exited (however it stopped)."""
        if record.state is not ContainerState.EXITED:
            return
        updates = await self.host.stop_container(
            self._pod(record.sandbox_id), await self._container(record)
        )
        await self._after(updates, ())

    async def remove(self, record: Container) -> None:
        """After the container is gone; its cached config is forgotten."""
        try:
            await self._container_event("remove_container", record)
        finally:
            self.forget(record.id)

    def forget(self, container_id: str) -> None:
        """Drop a removed container's cached config (also when no plugin heard of it)."""
        self._specs.pop(container_id, None)
