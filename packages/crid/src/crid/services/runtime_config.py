"""Runtime-wide RPCs: RuntimeConfig, UpdateRuntimeConfig, UpdateContainerResources,
UpdatePodSandboxResources, ReopenContainerLog and CheckpointContainer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from crid import control
from crid._cri.v1 import api_pb2
from crid.errors import InvalidRequestError
from crid.rpc_errors import translate_errors
from crid.sandbox.lifecycle import Lifecycle
from crid.services._base import RpcContext, ServiceBase
from ocispec.generate import ResourceOptions

__all__ = ["RuntimeConfigRPCs", "resource_options"]


def _positive(name: str, value: int, *, allow_unlimited: bool = False) -> int | None:
    """A CRI resource number: 0 is unset; negatives are errors (-1 may mean unlimited)."""
    if value == 0:
        return None
    if value < 0 and not (allow_unlimited and value == -1):
        raise InvalidRequestError(f"{name} must not be negative (got {value})")
    return value


def resource_options(resources: api_pb2.LinuxContainerResources) -> ResourceOptions:
    """CRI LinuxContainerResources as ocispec's ResourceOptions (oom_score_adj aside)."""
    return ResourceOptions(
        cpu_shares=_positive("cpu_shares", resources.cpu_shares),
        cpu_quota=_positive("cpu_quota", resources.cpu_quota, allow_unlimited=True),
        cpu_period=_positive("cpu_period", resources.cpu_period),
        cpuset_cpus=resources.cpuset_cpus,
        cpuset_mems=resources.cpuset_mems,
        memory_limit=_positive("memory_limit_in_bytes", resources.memory_limit_in_bytes),
        memory_swap=_positive(
            "memory_swap_limit_in_bytes", resources.memory_swap_limit_in_bytes, allow_unlimited=True
        ),
        hugepage_limits={h.page_size: h.limit for h in resources.hugepage_limits},
        unified=dict(resources.unified),
    )


def _add(
    a: api_pb2.LinuxContainerResources, b: api_pb2.LinuxContainerResources
) -> api_pb2.LinuxContainerResources:
    """Pod resources plus overhead: limits and shares add up, the rest comes from ``a``."""
    total = api_pb2.LinuxContainerResources()
    total.CopyFrom(a)
    total.cpu_shares = a.cpu_shares + b.cpu_shares
    total.cpu_period = a.cpu_period or b.cpu_period
    if a.cpu_quota > 0 and b.cpu_quota > 0:
        total.cpu_quota = a.cpu_quota + b.cpu_quota
    if a.memory_limit_in_bytes > 0 and b.memory_limit_in_bytes > 0:
        total.memory_limit_in_bytes = a.memory_limit_in_bytes + b.memory_limit_in_bytes
    return total


class RuntimeConfigRPCs(ServiceBase):
    """The runtime-wide RPCs."""

    @translate_errors
    async def RuntimeConfig(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.RuntimeConfigRequest, context: RpcContext
    ) -> api_pb2.RuntimeConfigResponse:
        systemd = self.ctx.config.crid.runtime.cgroup_manager == "systemd"
        driver = api_pb2.SYSTEMD if systemd else api_pb2.CGROUPFS
        return api_pb2.RuntimeConfigResponse(
            linux=api_pb2.LinuxRuntimeConfiguration(cgroup_driver=driver)
        )

    @translate_errors
    async def UpdateRuntimeConfig(  # noqa: N802
        self, request: api_pb2.UpdateRuntimeConfigRequest, context: RpcContext
    ) -> api_pb2.UpdateRuntimeConfigResponse:
        cidr = request.runtime_config.network_config.pod_cidr
        await control.record_pod_cidr(self.ctx.layout, cidr)
        return api_pb2.UpdateRuntimeConfigResponse()

    @translate_errors
    async def UpdateContainerResources(  # noqa: N802
        self, request: api_pb2.UpdateContainerResourcesRequest, context: RpcContext
    ) -> api_pb2.UpdateContainerResourcesResponse:
        container = self.ctx.registry.container(request.container_id)
        if not request.HasField("linux"):
            raise InvalidRequestError("UpdateContainerResources needs linux resources")
        await Lifecycle.of(self.ctx).containers.update_resources(
            container.id, resource_options(request.linux)
        )
        if container.config:  # ContainerStatus reports the resources now in force
            config = api_pb2.ContainerConfig.FromString(container.config)
            config.linux.resources.CopyFrom(request.linux)
            current = self.ctx.registry.find_container(container.id) or container
            await self.ctx.registry.save_container(
                dataclasses.replace(current, config=config.SerializeToString())
            )
        return api_pb2.UpdateContainerResourcesResponse()

    @translate_errors
    async def UpdatePodSandboxResources(  # noqa: N802
        self, request: api_pb2.UpdatePodSandboxResourcesRequest, context: RpcContext
    ) -> api_pb2.UpdatePodSandboxResourcesResponse:
        sandbox = self.ctx.registry.sandbox(request.pod_sandbox_id)
        total = _add(request.resources, request.overhead)
        await Lifecycle.of(self.ctx).pods.update_resources(
            sandbox.id,
            resource_options(total),
            overhead=resource_options(request.overhead),
            resources=resource_options(request.resources),
        )
        return api_pb2.UpdatePodSandboxResourcesResponse()

    @translate_errors
    async def ReopenContainerLog(  # noqa: N802
        self, request: api_pb2.ReopenContainerLogRequest, context: RpcContext
    ) -> api_pb2.ReopenContainerLogResponse:
        container = self.ctx.registry.container(request.container_id)
        bundle = (
            Path(container.bundle) if container.bundle else self.ctx.layout.bundle(container.id)
        )
        await control.reopen_container_log(container, bundle)
        return api_pb2.ReopenContainerLogResponse()

    @translate_errors
    async def CheckpointContainer(  # noqa: N802
        self, request: api_pb2.CheckpointContainerRequest, context: RpcContext
    ) -> api_pb2.CheckpointContainerResponse:
        container = self.ctx.registry.container(request.container_id)
        control.checkpoint_container(container, request.location)
        return api_pb2.CheckpointContainerResponse()
