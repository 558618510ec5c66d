"""Stats and metrics RPCs: ContainerStats, PodSandboxStats, their List/Stream variants,
ListMetricDescriptors and ListPodSandboxMetrics (+ stream), over :mod:`crid.stats`
(metrics answers: :mod:`crid.services._metrics_messages`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from google.protobuf.message import Message

from crid._cri.v1 import api_pb2
from crid.rpc_errors import translate_errors
from crid.services._base import RpcContext, ServiceBase
from crid.services._cache import EncodedResponseCache, PollMemo
from crid.state import Container, ContainerState, Sandbox, SandboxState
from crid.stats.select import running_by_pod, select_containers, select_sandboxes

if TYPE_CHECKING:  # the sampler and the metrics load with the first stats or metrics RPC
    from crid.services._metrics_messages import MetricsMessages
    from crid.stats.network import InterfaceUsage, NetworkUsage
    from crid.stats.sampler import Pod, StatsSampler
    from crid.stats.usage import ContainerUsage, CpuUsage, MemoryUsage, SandboxUsage

__all__ = ["StatsRPCs"]

_T = TypeVar("_T")

# Items per message of the Stream* variants (each message holds at least one item).
STREAM_CHUNK = 200


def _u64(value: int | None) -> api_pb2.UInt64Value | None:
    return api_pb2.UInt64Value(value=value) if value is not None else None


# The stats messages are filled in place (one allocation per message tree): building them
# from nested constructors copies every sub-message once more and took 3 ms per 100 pods.


def _set_u64(target: api_pb2.UInt64Value, value: int | None) -> None:
    if value is not None:
        target.SetInParent()
        target.value = value


def _fill_cpu(target: api_pb2.CpuUsage, cpu: CpuUsage) -> None:
    target.timestamp = cpu.timestamp_ns
    _set_u64(target.usage_core_nano_seconds, cpu.usage_core_ns)
    _set_u64(target.usage_nano_cores, cpu.usage_nano_cores)


def _fill_memory(target: api_pb2.MemoryUsage, memory: MemoryUsage) -> None:
    target.timestamp = memory.timestamp_ns
    _set_u64(target.working_set_bytes, memory.working_set_bytes)
    _set_u64(target.available_bytes, memory.available_bytes)
    _set_u64(target.usage_bytes, memory.usage_bytes)
    _set_u64(target.rss_bytes, memory.rss_bytes)
    _set_u64(target.page_faults, memory.page_faults)
    _set_u64(target.major_page_faults, memory.major_page_faults)


def _fill_container_stats(
    target: api_pb2.ContainerStats, usage: ContainerUsage, container: Container
) -> None:
    attributes = target.attributes
    attributes.id = container.id
    attributes.metadata.name = container.meta.name
    attributes.metadata.attempt = container.meta.attempt
    attributes.labels.update(container.labels)
    attributes.annotations.update(container.annotations)
    _fill_cpu(target.cpu, usage.cpu)
    _fill_memory(target.memory, usage.memory)
    layer = usage.writable_layer
    if layer is not None:
        fs = target.writable_layer
        fs.timestamp = layer.timestamp_ns
        fs.fs_id.mountpoint = layer.mountpoint
        _set_u64(fs.used_bytes, layer.used_bytes)
        _set_u64(fs.inodes_used, layer.inodes_used)


def _container_stats(usage: ContainerUsage, container: Container) -> api_pb2.ContainerStats:
    message = api_pb2.ContainerStats()
    _fill_container_stats(message, usage, container)
    return message


def _sandbox_stats(
    usage: SandboxUsage, sandbox: Sandbox, containers: Sequence[Container]
) -> api_pb2.PodSandboxStats:
    by_id = {c.id: c for c in containers}
    message = api_pb2.PodSandboxStats()
    attributes = message.attributes
    attributes.id = sandbox.id
    meta = attributes.metadata
    meta.name = sandbox.meta.name
    meta.uid = sandbox.meta.uid
    meta.namespace = sandbox.meta.namespace
    meta.attempt = sandbox.meta.attempt
    attributes.labels.update(sandbox.labels)
    attributes.annotations.update(sandbox.annotations)
    linux = message.linux
    linux.SetInParent()
    _fill_cpu(linux.cpu, usage.cpu)
    _fill_memory(linux.memory, usage.memory)
    _fill_network(linux, usage.network)
    linux.process.timestamp = usage.cpu.timestamp_ns
    _set_u64(linux.process.process_count, usage.process_count)
    for container_usage in usage.containers:
        _fill_container_stats(
            linux.containers.add(), container_usage, by_id[container_usage.container_id]
        )
    return message


def _fill_interface(target: api_pb2.NetworkInterfaceUsage, usage: InterfaceUsage) -> None:
    target.name = usage.name
    _set_u64(target.rx_bytes, usage.rx_bytes)
    _set_u64(target.rx_errors, usage.rx_errors)
    _set_u64(target.tx_bytes, usage.tx_bytes)
    _set_u64(target.tx_errors, usage.tx_errors)


def _fill_network(linux: api_pb2.LinuxPodSandboxStats, usage: NetworkUsage | None) -> None:
    if usage is None:
        return
    network = linux.network
    network.SetInParent()
    network.timestamp = usage.timestamp_ns
    for interface in usage.interfaces:
        if interface.name == usage.default:
            _fill_interface(network.default_interface, interface)
            break
    for interface in usage.interfaces:
        _fill_interface(network.interfaces.add(), interface)


class _StatsMessages:
    """The answer of each sample, built once: by the sampler's listener in its worker thread
    (so a List RPC after a refresh only copies ready messages), or on first use.

    Entries are keyed by id and hold the sample and the records they were built from;
    samples and records are frozen and replaced, never changed, so identity tells a stale
    entry. Published messages are never modified, so any thread may copy them.
    """

    def __init__(self) -> None:
        self._pods: dict[str, tuple[tuple[object, ...], api_pb2.PodSandboxStats]] = {}
        self._containers: dict[str, tuple[tuple[object, ...], api_pb2.ContainerStats]] = {}
        self.pod_list = EncodedResponseCache(_pod_list)
        self.container_list = EncodedResponseCache(_container_list)

    def container(self, usage: ContainerUsage, container: Container) -> api_pb2.ContainerStats:
        key = (usage, container)
        entry = self._containers.get(container.id)
        if entry is not None and _same(entry[0], key):
            return entry[1]
        message = _container_stats(usage, container)
        self._containers[container.id] = (key, message)
        return message

    def sandbox(
        self, usage: SandboxUsage, sandbox: Sandbox, containers: Sequence[Container]
    ) -> api_pb2.PodSandboxStats:
        key = (usage, sandbox, *containers)
        entry = self._pods.get(sandbox.id)
        if entry is not None and _same(entry[0], key):
            return entry[1]
        message = _sandbox_stats(usage, sandbox, containers)
        by_id = {c.id: c for c in containers}
        for container_usage in usage.containers:  # ListContainerStats answers them alone
            self.container(container_usage, by_id[container_usage.container_id])
        self._pods[sandbox.id] = (key, message)
        return message

    def render(self, samples: Sequence[tuple[Pod, SandboxUsage]], complete: bool) -> None:
        """Build the answers of new samples (the sampler's listener, in its worker thread)."""
        for (sandbox, containers), usage in samples:
            self.sandbox(usage, sandbox, containers)
        if complete:
            pods = {sandbox.id for (sandbox, _), _ in samples}
            running = {c.id for (_, containers), _ in samples for c in containers}
            # list(dict) is one atomic copy: another worker thread may be adding entries.
            for sid in [k for k in list(self._pods) if k not in pods]:
                self._pods.pop(sid, None)
            for cid in [k for k in list(self._containers) if k not in running]:
                self._containers.pop(cid, None)

    def __len__(self) -> int:
        return len(self._pods) + len(self._containers)


def _pod_list(items: list[api_pb2.PodSandboxStats]) -> api_pb2.ListPodSandboxStatsResponse:
    return api_pb2.ListPodSandboxStatsResponse(stats=items)


def _container_list(items: list[api_pb2.ContainerStats]) -> api_pb2.ListContainerStatsResponse:
    return api_pb2.ListContainerStatsResponse(stats=items)


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Same samples and records: identical (checked first, in C) or equal (same content)."""
    return a == b


def _chunks(items: Sequence[_T]) -> list[Sequence[_T]]:
    return [items[i : i + STREAM_CHUNK] for i in range(0, len(items), STREAM_CHUNK)]


class StatsRPCs(ServiceBase):
    """Resource usage RPCs."""

    @property
    def stats(self) -> StatsSampler:
        """The context's usage cache (sampled in the background once stats are asked for)."""
        from crid.stats.sampler import StatsSampler

        sampler = StatsSampler.of(self.ctx)
        if getattr(self, "_stats_messages", None) is None:
            self._stats_messages = _StatsMessages()
            sampler.add_listener(self._stats_messages.render)
            sampler.add_listener(self.metrics_messages.render)
        return sampler

    @property
    def metrics_messages(self) -> MetricsMessages:
        """The built answers of the metrics RPCs (for the configured metric groups)."""
        found: MetricsMessages | None = getattr(self, "_metrics_messages", None)
        if found is None:
            from crid.services._metrics_messages import MetricsMessages
            from crid.stats.descriptors import host_groups

            found = MetricsMessages(
                host_groups(
                    self.ctx.config.crid.stats.included_pod_metrics,
                    self.ctx.controllers.available,
                )
            )
            self._metrics_messages = found
        return found

    @property
    def stats_messages(self) -> _StatsMessages:
        """The built answers of the samples."""
        _ = self.stats
        messages: _StatsMessages = self._stats_messages
        return messages

    async def _polled(
        self,
        polls: PollMemo,
        request: Message,
        build: Callable[[StatsSampler], Awaitable[tuple[bytes, float]]],
    ) -> bytes:
        """``build``'s encoded answer (with when its samples age out), or the last one to
        the same request while the records and the samples are the same (``PollMemo``)."""
        sampler = self.stats
        state = (self.ctx.registry.changes, sampler.generation)
        asked = request.SerializeToString()
        found = polls.get(state, asked, time.monotonic())
        if found is not None:
            sampler.touch()  # as answering from scratch would: sampling goes on
            return found
        answer, until = await build(sampler)
        polls.put(state, asked, answer, until)
        return answer

    def _stats_containers(
        self, request_filter: api_pb2.ContainerStatsFilter | None
    ) -> list[Container]:
        f = request_filter or api_pb2.ContainerStatsFilter()
        return select_containers(
            self.ctx.registry,
            id_or_prefix=f.id,
            sandbox_id=f.pod_sandbox_id,
            states=[ContainerState.RUNNING],
            labels=dict(f.label_selector),
        )

    async def _container_stats(self, containers: list[Container]) -> list[api_pb2.ContainerStats]:
        usages = await self.stats.containers(containers)
        messages = self.stats_messages
        return [messages.container(u, c) for u, c in zip(usages, containers, strict=True)]

    async def _list_container_stats(
        self, request_filter: api_pb2.ContainerStatsFilter | None
    ) -> list[api_pb2.ContainerStats]:
        return await self._container_stats(self._stats_containers(request_filter))

    def _stats_pods(
        self, request_filter: api_pb2.PodSandboxStatsFilter | None
    ) -> list[tuple[Sandbox, list[Container]]]:
        f = request_filter or api_pb2.PodSandboxStatsFilter()
        return self._pods(f.id, dict(f.label_selector))

    async def _sandbox_stats(
        self, pods: list[tuple[Sandbox, list[Container]]]
    ) -> list[api_pb2.PodSandboxStats]:
        usages = await self.stats.sandboxes(pods)
        messages = self.stats_messages
        return [messages.sandbox(u, s, cs) for u, (s, cs) in zip(usages, pods, strict=True)]

    async def _list_sandbox_stats(
        self, request_filter: api_pb2.PodSandboxStatsFilter | None
    ) -> list[api_pb2.PodSandboxStats]:
        return await self._sandbox_stats(self._stats_pods(request_filter))

    def _pods(
        self, id_or_prefix: str = "", labels: dict[str, str] | None = None
    ) -> list[tuple[Sandbox, list[Container]]]:
        sandboxes = select_sandboxes(
            self.ctx.registry,
            id_or_prefix=id_or_prefix,
            states=[SandboxState.READY],
            labels=labels,
        )
        running = running_by_pod(self.ctx.registry)
        return [(s, running.get(s.id, [])) for s in sandboxes]

    @translate_errors
    async def ContainerStats(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.ContainerStatsRequest, context: RpcContext
    ) -> api_pb2.ContainerStatsResponse:
        container = self.ctx.registry.container(request.container_id)
        [usage] = await self.stats.containers([container])
        return api_pb2.ContainerStatsResponse(stats=self.stats_messages.container(usage, container))

    @translate_errors
    async def ListContainerStats(  # noqa: N802
        self, request: api_pb2.ListContainerStatsRequest, context: RpcContext
    ) -> bytes:
        """The encoded ``ListContainerStatsResponse`` (sent as it is)."""

        async def build(sampler: StatsSampler) -> tuple[bytes, float]:
            containers = self._stats_containers(
                request.filter if request.HasField("filter") else None
            )
            stats = await self._container_stats(containers)
            until = sampler.serves_until((), [c.id for c in containers])
            return self.stats_messages.container_list.encoded(stats), until

        return await self._polled(self.container_stats_polls, request, build)

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
        return api_pb2.PodSandboxStatsResponse(
            stats=self.stats_messages.sandbox(usage, sandbox, running)
        )

    @translate_errors
    async def ListPodSandboxStats(  # noqa: N802
        self, request: api_pb2.ListPodSandboxStatsRequest, context: RpcContext
    ) -> bytes:
        """The encoded ``ListPodSandboxStatsResponse`` (sent as it is)."""

        async def build(sampler: StatsSampler) -> tuple[bytes, float]:
            pods = self._stats_pods(request.filter if request.HasField("filter") else None)
            stats = await self._sandbox_stats(pods)
            until = sampler.serves_until([s.id for s, _ in pods], ())
            return self.stats_messages.pod_list.encoded(stats), until

        return await self._polled(self.pod_stats_polls, request, build)

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
        return self.metrics_messages.descriptors

    async def _pod_metrics(self) -> list[bytes]:
        """Each pod's encoded ``PodSandboxMetrics``."""
        pods = self._pods()
        usages = await self.stats.sandboxes(pods, detailed=True)
        messages = self.metrics_messages
        return [messages.pod(u, s, cs) for u, (s, cs) in zip(usages, pods, strict=True)]

    @translate_errors
    async def ListPodSandboxMetrics(  # noqa: N802
        self, request: api_pb2.ListPodSandboxMetricsRequest, context: RpcContext
    ) -> bytes:
        """The encoded ``ListPodSandboxMetricsResponse`` (sent as it is)."""
        return self.metrics_messages.pod_list.response(await self._pod_metrics())

    @translate_errors
    async def StreamPodSandboxMetrics(  # noqa: N802
        self, request: api_pb2.StreamPodSandboxMetricsRequest, context: RpcContext
    ) -> AsyncIterator[bytes]:
        """Encoded ``StreamPodSandboxMetricsResponse`` chunks (sent as they are)."""
        from crid.services._metrics_messages import encode_repeated

        for chunk in _chunks(await self._pod_metrics()):
            yield encode_repeated(chunk)
