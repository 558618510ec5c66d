"""The protobuf answers of ``ListMetricDescriptors`` and ``ListPodSandboxMetrics``.

A hundred pods make ~10,000 ``Metric`` messages: far too many to build on the event loop
per call. Each pod's ``PodSandboxMetrics`` is built once per detailed sample, by the stats
sampler's listener in its worker thread (or on first use), and kept **encoded**: bytes
hold a pod's metrics in a tenth of the memory the message objects take, and an answer
is those bytes joined (both ``ListPodSandboxMetricsResponse`` and
``StreamPodSandboxMetricsResponse`` are one repeated field 1 of them), which the server
sends as they are (:mod:`crid.inflight` passes ``bytes`` answers through). Rebuilding a
list answer while pods come and go is then a join, not a copy of every message.
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

__all__ = ["MetricsMessages", "encode_repeated"]

#: The tag of field 1, wire type 2 (length-delimited): ``(1 << 3) | 2``.
_FIELD_1 = b"\x0a"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_repeated(items: Sequence[bytes]) -> bytes:
    """A message whose field 1 repeats the encoded ``items`` (in wire format)."""
    return b"".join(part for item in items for part in (_FIELD_1, _varint(len(item)), item))


def _fill(target: api_pb2.Metric, sample: MetricSample) -> None:
    target.name = sample.name
    target.timestamp = sample.timestamp_ns
    target.metric_type = sample.kind.value  # type: ignore[assignment]
    target.label_values.extend(sample.label_values)
    target.value.SetInParent()  # 0 is a value too
    target.value.value = sample.value


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
        self._pods: dict[str, tuple[tuple[object, ...], bytes]] = {}
        #: The encoded ListPodSandboxMetricsResponse of the last list of pods.
        self.pod_list: ResponseCache[bytes, bytes] = ResponseCache(encode_repeated)

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

    def pod(self, usage: SandboxUsage, sandbox: Sandbox, containers: Sequence[Container]) -> bytes:
        """One pod's encoded metrics message, built once per sample and records."""
        key = (usage, sandbox, *containers)
        entry = self._pods.get(sandbox.id)
        if entry is not None and entry[0] == key:
            return entry[1]
        encoded = self.build(usage, sandbox, containers).SerializeToString()
        self._pods[sandbox.id] = (key, encoded)
        return encoded

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
            self.pod_list.response(items)  # the next ListPodSandboxMetrics finds it ready

    def __len__(self) -> int:
        return len(self._pods)
