"""The Prometheus endpoint: crid's instruments plus pods and containers by state.

Pod and container counts are taken at scrape time from the registry. The HTTP server
(prometheus-client's, in its own thread) never touches the registry itself: it asks the
event loop for a snapshot, so the dictionaries are only ever read on the loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from crid.metrics.instruments import REGISTRY
from crid.state import ContainerState, Registry, SandboxState

__all__ = ["MetricsEndpoint", "StateCollector"]

_log = logging.getLogger(__name__)


class _Instruments(Collector):
    """crid's shared instruments, served by each endpoint."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


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


class MetricsEndpoint:
    """An HTTP server answering ``/metrics`` for one daemon."""

    def __init__(self, *, host: str, port: int, registry: Registry) -> None:
        self.host = host
        self.requested_port = port
        self._state_registry = registry
        self._server: WSGIServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the free one picked when ``port`` was 0)."""
        if self._server is None:
            raise RuntimeError("the metrics endpoint is not running")
        return int(self._server.server_port)

    async def start(self) -> None:
        collectors = CollectorRegistry(auto_describe=False)
        collectors.register(_Instruments())
        collectors.register(StateCollector(self._state_registry, asyncio.get_running_loop()))
        server, _ = await asyncio.to_thread(
            start_http_server, self.requested_port, self.host, collectors
        )
        self._server = server
        _log.info("metrics serving", extra={"address": f"http://{self.host}:{self.port}/metrics"})

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()
