"""Stats and metrics RPCs: ContainerStats, PodSandboxStats, their List/Stream variants,
ListMetricDescriptors and ListPodSandboxMetrics (+ stream), over :mod:`crid.stats`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from crid._cri.v1 import api_pb2
from crid.rpc_errors import translate_errors
from crid.services._base import RpcContext, ServiceBase
from crid.state import Container, ContainerState, Sandbox, SandboxState
from crid.stats import (
    METRIC_DESCRIPTORS,
    ContainerUsage,
    CpuUsage,
    InterfaceUsage,
    MemoryUsage,
    MetricSample,
    NetworkUsage,
    SandboxUsage,
    StatsSampler,
    container_metrics,
    sandbox_metrics,
    select_containers,
    select_sandboxes,
)

__all__ = ["StatsRPCs"]

_T = TypeVar("_T")

# Items per message of the Stream* variants (each message holds at least one item).
STREAM_CHUNK = 200


def _u64(value: int | None) -> api_pb2.UInt64Value | None:
    return api_pb2.UInt64Value(value=value) if value is not None else None


def _cpu(cpu: CpuUsage) -> api_pb2.CpuUsage:
    return api_pb2.CpuUsage(
        timestamp=cpu.timestamp_ns,
        usage_core_nano_seconds=_u64(cpu.usage_core_ns),
        usage_nano_cores=_u64(cpu.usage_nano_cores),
    )


def _memory(memory: MemoryUsage) -> api_pb2.MemoryUsage:
    return api_pb2.MemoryUsage(
        timestamp=memory.timestamp_ns,
        working_set_bytes=_u64(memory.working_set_bytes),
        available_bytes=_u64(memory.available_bytes),
        usage_bytes=_u64(memory.usage_bytes),
        rss_bytes=_u64(memory.rss_bytes),
        page_faults=_u64(memory.page_faults),
        major_page_faults=_u64(memory.major_page_faults),
    )


def _container_stats(usage: ContainerUsage, container: Container) -> api_pb2.ContainerStats:
    layer = usage.writable_layer
    return api_pb2.ContainerStats(
        attributes=api_pb2.ContainerAttributes(
            id=container.id,
            metadata=api_pb2.ContainerMetadata(
                name=container.meta.name, attempt=container.meta.attempt
            ),
            labels=container.labels,
            annotations=container.annotations,
        ),
        cpu=_cpu(usage.cpu),
        memory=_memory(usage.memory),
        writable_layer=(
            api_pb2.FilesystemUsage(
                timestamp=layer.timestamp_ns,
                fs_id=api_pb2.FilesystemIdentifier(mountpoint=layer.mountpoint),
                used_bytes=api_pb2.UInt64Value(value=layer.used_bytes),
                inodes_used=api_pb2.UInt64Value(value=layer.inodes_used),
            )
            if layer is not None
            else None
        ),
    )


def _sandbox_stats(
    usage: SandboxUsage, sandbox: Sandbox, containers: Sequence[Container]
) -> api_pb2.PodSandboxStats:
    by_id = {c.id: c for c in containers}
    return api_pb2.PodSandboxStats(
        attributes=api_pb2.PodSandboxAttributes(
            id=sandbox.id,
            metadata=api_pb2.PodSandboxMetadata(
                name=sandbox.meta.name,
                uid=sandbox.meta.uid,
                namespace=sandbox.meta.namespace,
                attempt=sandbox.meta.attempt,
            ),
            labels=sandbox.labels,
            annotations=sandbox.annotations,
        ),
        linux=api_pb2.LinuxPodSandboxStats(
            cpu=_cpu(usage.cpu),
            memory=_memory(usage.memory),
            network=_network(usage.network),
            process=api_pb2.ProcessUsage(
                timestamp=usage.cpu.timestamp_ns, process_count=_u64(usage.process_count)
            ),
            containers=[_container_stats(u, by_id[u.container_id]) for u in usage.containers],
        ),
    )


def _interface(usage: InterfaceUsage) -> api_pb2.NetworkInterfaceUsage:
    return api_pb2.NetworkInterfaceUsage(
        name=usage.name,
        rx_bytes=api_pb2.UInt64Value(value=usage.rx_bytes),
        rx_errors=api_pb2.UInt64Value(value=usage.rx_errors),
        tx_bytes=api_pb2.UInt64Value(value=usage.tx_bytes),
        tx_errors=api_pb2.UInt64Value(value=usage.tx_errors),
    )


def _network(usage: NetworkUsage | None) -> api_pb2.NetworkUsage | None:
    if usage is None:
        return None
    default = [i for i in usage.interfaces if i.name == usage.default]
    return api_pb2.NetworkUsage(
        timestamp=usage.timestamp_ns,
        default_interface=_interface(default[0]) if default else None,
        interfaces=[_interface(i) for i in usage.interfaces],
    )


def _metric(sample: MetricSample) -> api_pb2.Metric:
    return api_pb2.Metric(
        name=sample.name,
        timestamp=sample.timestamp_ns,
        metric_type=sample.kind.name,
        label_values=list(sample.label_values),
        value=api_pb2.UInt64Value(value=sample.value),
    )


def _chunks(items: Sequence[_T]) -> list[Sequence[_T]]:
    return [items[i : i + STREAM_CHUNK] for i in range(0, len(items), STREAM_CHUNK)]


class StatsRPCs(ServiceBase):
    """Resource usage RPCs."""

    @property
    def stats(self) -> StatsSampler:
        """The context's usage cache (sampled in the background once stats are asked for)."""
        return StatsSampler.of(self.ctx)

    async def _list_container_stats(
        self, request_filter: api_pb2.ContainerStatsFilter | None
    ) -> list[api_pb2.ContainerStats]:
        f = request_filter or api_pb2.ContainerStatsFilter()
        containers = select_containers(
            self.ctx.registry,
            id_or_prefix=f.id,
            sandbox_id=f.pod_sandbox_id,
            states=[ContainerState.RUNNING],
            labels=dict(f.label_selector),
        )
        usages = await self.stats.containers(containers)
        return [_container_stats(u, c) for u, c in zip(usages, containers, strict=True)]

    async def _list_sandbox_stats(
        self, request_filter: api_pb2.PodSandboxStatsFilter | None
    ) -> list[api_pb2.PodSandboxStats]:
        f = request_filter or api_pb2.PodSandboxStatsFilter()
        pods = self._pods(f.id, dict(f.label_selector))
        usages = await self.stats.sandboxes(pods)
        return [_sandbox_stats(u, s, cs) for u, (s, cs) in zip(usages, pods, strict=True)]

    def _pods(
        self, id_or_prefix: str = "", labels: dict[str, str] | None = None
    ) -> list[tuple[Sandbox, list[Container]]]:
        sandboxes = select_sandboxes(
            self.ctx.registry,
            id_or_prefix=id_or_prefix,
            states=[SandboxState.READY],
            labels=labels,
        )
        return [
            (
                s,
                [
                    c
                    for c in self.ctx.registry.containers(s.id)
                    if c.state == ContainerState.RUNNING
                ],
            )
            for s in sandboxes
        ]

    @translate_errors
    async def ContainerStats(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.ContainerStatsRequest, context: RpcContext
    ) -> api_pb2.ContainerStatsResponse:
        container = self.ctx.registry.container(request.container_id)
        [usage] = await self.stats.containers([container])
        return api_pb2.ContainerStatsResponse(stats=_container_stats(usage, container))

    @translate_errors
    async def ListContainerStats(  # noqa: N802
        self, request: api_pb2.ListContainerStatsRequest, context: RpcContext
    ) -> api_pb2.ListContainerStatsResponse:
        stats = await self._list_container_stats(
            request.filter if request.HasField("filter") else None
        )
        return api_pb2.ListContainerStatsResponse(stats=stats)

    @translate_errors
    async def StreamContainerStats(  # noqa: N802
        self, request: api_pb2.StreamContainerStatsRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.StreamContainerStatsResponse]:
        stats = await self._list_container_stats(
            request.filter if request.HasField("filter") else None
        )
        for chunk in _chunks(stats):
            yield api_pb2.StreamContainerStatsResponse(container_stats=chunk)

    @translate_errors
    async def PodSandboxStats(  # noqa: N802
        self, request: api_pb2.PodSandboxStatsRequest, context: RpcContext
    ) -> api_pb2.PodSandboxStatsResponse:
        sandbox = self.ctx.registry.sandbox(request.pod_sandbox_id)
        running = [
            c for c in self.ctx.registry.containers(sandbox.id) if c.state == ContainerState.RUNNING
        ]
        [usage] = await self.stats.sandboxes([(sandbox, running)])
        return api_pb2.PodSandboxStatsResponse(stats=_sandbox_stats(usage, sandbox, running))

    @translate_errors
    async def ListPodSandboxStats(  # noqa: N802
        self, request: api_pb2.ListPodSandboxStatsRequest, context: RpcContext
    ) -> api_pb2.ListPodSandboxStatsResponse:
        stats = await self._list_sandbox_stats(
            request.filter if request.HasField("filter") else None
        )
        return api_pb2.ListPodSandboxStatsResponse(stats=stats)

    @translate_errors
    async def StreamPodSandboxStats(  # noqa: N802
        self, request: api_pb2.StreamPodSandboxStatsRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.StreamPodSandboxStatsResponse]:
        stats = await self._list_sandbox_stats(
            request.filter if request.HasField("filter") else None
        )
        for chunk in _chunks(stats):
            yield api_pb2.StreamPodSandboxStatsResponse(pod_sandbox_stats=chunk)

    @translate_errors
    async def ListMetricDescriptors(  # noqa: N802
        self, request: api_pb2.ListMetricDescriptorsRequest, context: RpcContext
    ) -> api_pb2.ListMetricDescriptorsResponse:
        return api_pb2.ListMetricDescriptorsResponse(
            descriptors=[
                api_pb2.MetricDescriptor(name=d.name, help=d.help, label_keys=list(d.label_keys))
                for d in METRIC_DESCRIPTORS
            ]
        )

    async def _pod_metrics(self) -> list[api_pb2.PodSandboxMetrics]:
        pods = self._pods()
        usages = await self.stats.sandboxes(pods)
        found = []
        for usage, (sandbox, containers) in zip(usages, pods, strict=True):
            by_id = {c.id: c for c in containers}
            found.append(
                api_pb2.PodSandboxMetrics(
                    pod_sandbox_id=sandbox.id,
                    metrics=[_metric(m) for m in sandbox_metrics(usage, sandbox)],
                    container_metrics=[
                        api_pb2.ContainerMetrics(
                            container_id=u.container_id,
                            metrics=[
                                _metric(m)
                                for m in container_metrics(u, by_id[u.container_id], sandbox)
                            ],
                        )
                        for u in usage.containers
                    ],
                )
            )
        return found

    @translate_errors
    async def ListPodSandboxMetrics(  # noqa: N802
        self, request: api_pb2.ListPodSandboxMetricsRequest, context: RpcContext
    ) -> api_pb2.ListPodSandboxMetricsResponse:
        return api_pb2.ListPodSandboxMetricsResponse(pod_metrics=await self._pod_metrics())

    @translate_errors
    async def StreamPodSandboxMetrics(  # noqa: N802
        self, request: api_pb2.StreamPodSandboxMetricsRequest, context: RpcContext
    ) -> AsyncIterator[api_pb2.StreamPodSandboxMetricsResponse]:
        for chunk in _chunks(await self._pod_metrics()):
            yield api_pb2.StreamPodSandboxMetricsResponse(pod_sandbox_metrics=chunk)
