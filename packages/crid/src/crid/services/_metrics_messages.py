"""The protobuf answers of ``ListMetricDescriptors`` and ``ListPodSandboxMetrics``.

A hundred pods make ~10,000 ``Metric`` messages: far too many to build on the event loop
per call. Each pod's ``PodSandboxMetrics`` is built once per detailed sample, by the stats
sampler's listener in its worker thread (or on first use), and after a complete refresh
the whole list answer too, so a ListPodSandboxMetrics between two refreshes only looks
the ready messages up. Published messages are never modified.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from crid._cri.v1 import api_pb2
from crid.services._cache import ResponseCache
from crid.state import Container, Sandbox
from crid.stats import (
    MetricSample,
    Pod,
    SandboxUsage,
    container_metrics,
    descriptors_for,
    sandbox_metrics,
)

__all__ = ["MetricsMessages"]


def _fill(target: api_pb2.Metric, sample: MetricSample) -> None:
    target.name = sample.name
    target.timestamp = sample.timestamp_ns
    target.metric_type = sample.kind.value  # type: ignore[assignment]
    target.label_values.extend(sample.label_values)
    target.value.SetInParent()  # 0 is a value too
    target.value.value = sample.value


def _pod_list(items: list[api_pb2.PodSandboxMetrics]) -> api_pb2.ListPodSandboxMetricsResponse:
    return api_pb2.ListPodSandboxMetricsResponse(pod_metrics=items)


class MetricsMessages:
    """Answers for the metric ``groups`` of ``[crid.stats] included_pod_metrics``."""

    def __init__(self, groups: Collection[str]) -> None:
        self.groups = frozenset(groups)
        self.descriptors = api_pb2.ListMetricDescriptorsResponse(
            descriptors=[
                api_pb2.MetricDescriptor(name=d.name, help=d.help, label_keys=list(d.label_keys))
                for d in descriptors_for(self.groups)
            ]
        )
        self._pods: dict[str, tuple[tuple[object, ...], api_pb2.PodSandboxMetrics]] = {}
        self.pod_list = ResponseCache(_pod_list)

    def build(
        self, usage: SandboxUsage, sandbox: Sandbox, containers: Sequence[Container]
    ) -> api_pb2.PodSandboxMetrics:
        """One pod's metrics message (no cache)."""
        message = api_pb2.PodSandboxMetrics(pod_sandbox_id=sandbox.id)
        for sample in sandbox_metrics(usage, sandbox, self.groups):
            _fill(message.metrics.add(), sample)
        by_id = {c.id: c for c in containers}
        for container_usage in usage.containers:
            entry = message.container_metrics.add()
            entry.container_id = container_usage.container_id
            record = by_id[container_usage.container_id]
            for sample in container_metrics(container_usage, record, sandbox, self.groups):
                _fill(entry.metrics.add(), sample)
        return message

    def pod(
        self, usage: SandboxUsage, sandbox: Sandbox, containers: Sequence[Container]
    ) -> api_pb2.PodSandboxMetrics:
        """One pod's metrics message, built once per sample and records."""
        key = (usage, sandbox, *containers)
        entry = self._pods.get(sandbox.id)
        if entry is not None and entry[0] == key:
            return entry[1]
        message = self.build(usage, sandbox, containers)
        self._pods[sandbox.id] = (key, message)
        return message

    def render(self, samples: Sequence[tuple[Pod, SandboxUsage]], complete: bool) -> None:
        """Build the answers of new detailed samples (the sampler's listener, in its thread)."""
        items = [
            self.pod(usage, sandbox, containers)
            for (sandbox, containers), usage in samples
            if usage.detailed
        ]
        if not complete:
            return
        pods = {sandbox.id for (sandbox, _), _ in samples}
        # list(dict) is one atomic copy: another worker thread may be adding entries.
        for sid in [k for k in list(self._pods) if k not in pods]:
            self._pods.pop(sid, None)
        if len(items) == len(samples):
            answer = self.pod_list.response(items)  # the next ListPodSandboxMetrics finds it
            self._share(items, answer)

    def _share(
        self,
        items: list[api_pb2.PodSandboxMetrics],
        answer: api_pb2.ListPodSandboxMetricsResponse,
    ) -> None:
        """Point each pod's entry at its copy in ``answer`` (built from ``items``, in
        their order) and let the originals go."""
        views = list(answer.pod_metrics)
        for item, view in zip(items, views, strict=True):
            entry = self._pods.get(view.pod_sandbox_id)
            if entry is not None and entry[1] is item and item is not view:
                self._pods[view.pod_sandbox_id] = (entry[0], view)
        self.pod_list.remember(views, answer)

    def __len__(self) -> int:
        return len(self._pods)
