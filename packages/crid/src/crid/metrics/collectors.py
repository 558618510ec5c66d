"""The collectors of the metrics endpoint (imported with prometheus-client, when it starts).

Pod and container counts are taken at scrape time from the registry. The HTTP server
(prometheus-client's, in its own thread) never touches the registry itself: it asks the
event loop for a snapshot, so the dictionaries are only ever read on the loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crid.metrics import instruments
from crid.state import ContainerState, Registry, SandboxState

__all__ = ["InstrumentsCollector", "StateCollector"]


class InstrumentsCollector(Collector):
    """crid's shared instruments, served by each endpoint."""

    def collect(self) -> Iterator[Metric]:
        yield from instruments.enable().collect()


class StateCollector(Collector):
    """``crid_containers`` and ``crid_pods`` gauges by state, read on the event loop."""

    def __init__(
        self, registry: Registry, loop: asyncio.AbstractEventLoop, timeout: float = 5.0
    ) -> None:
        self._registry = registry
        self._loop = loop
        self._timeout = timeout

    async def _snapshot(self) -> tuple[Tally[str], Tally[str]]:
        containers = Tally(c.state.value for c in self._registry.containers())
        pods = Tally(s.state.value for s in self._registry.sandboxes())
        return containers, pods

    def collect(self) -> Iterator[Metric]:
        future = asyncio.run_coroutine_threadsafe(self._snapshot(), self._loop)
        containers, pods = future.result(self._timeout)
        family = GaugeMetricFamily(
            "crid_containers", "Containers crid knows, by state.", labels=["state"]
        )
        for state in ContainerState:
            family.add_metric([state.value], containers.get(state.value, 0))
        yield family
        family = GaugeMetricFamily(
            "crid_pods", "Pod sandboxes crid knows, by state.", labels=["state"]
        )
        for sandbox_state in SandboxState:
            family.add_metric([sandbox_state.value], pods.get(sandbox_state.value, 0))
        yield family
