"""Prometheus metrics: CRI call counts, errors and latencies, OCI runtime latencies, image
pulls, pods and containers by state; served when ``[crid.metrics] enable_metrics``.

prometheus-client is imported only once metrics are enabled (see
:mod:`crid.metrics.instruments`): ``REGISTRY`` and ``StateCollector`` load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crid.metrics.endpoint import MetricsEndpoint
from crid.metrics.instruments import enable, observe_rpc, observe_runtime_call, record_pull
from crid.metrics.interceptor import MetricsInterceptor

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from crid.metrics.collectors import StateCollector

    REGISTRY: CollectorRegistry

__all__ = [
    "REGISTRY",
    "MetricsEndpoint",
    "MetricsInterceptor",
    "StateCollector",
    "enable",
    "observe_rpc",
    "observe_runtime_call",
    "record_pull",
]


def __getattr__(name: str) -> Any:
    if name == "REGISTRY":
        return enable()
    if name == "StateCollector":
        from crid.metrics.collectors import StateCollector

        return StateCollector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
