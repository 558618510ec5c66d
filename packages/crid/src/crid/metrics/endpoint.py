"""The Prometheus endpoint: crid's instruments plus pods and containers by state.

Pod and container counts are taken at scrape time from the registry. The HTTP server
(prometheus-client's, in its own thread) never touches the registry itself: it asks the
event loop for a snapshot, so the dictionaries are only ever read on the loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from crid.metrics import instruments
from crid.state import Registry

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["MetricsEndpoint"]

_log = logging.getLogger(__name__)


class MetricsEndpoint:
    """An HTTP server answering ``/metrics`` for one daemon."""

    def __init__(self, *, host: str, port: int, registry: Registry) -> None:
        self.host = host
        self.requested_port = port
        self._state_registry = registry
        self._server: WSGIServer | None = None
        instruments.enable()  # recording starts with the endpoint that serves it

    @property
    def port(self) -> int:
        """The bound port (the free one picked when ``port`` was 0)."""
        if self._server is None:
            raise RuntimeError("the metrics endpoint is not running")
        return int(self._server.server_port)

    async def start(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        from crid.metrics.collectors import InstrumentsCollector, StateCollector

        collectors = CollectorRegistry(auto_describe=False)
        collectors.register(InstrumentsCollector())
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
