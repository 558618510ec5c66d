"""Prometheus metrics: CRI call counts, errors and latencies, OCI runtime latencies, image
pulls, pods and containers by state; served when ``[crid.metrics] enable_metrics``."""

from __future__ import annotations

from crid.metrics.endpoint import MetricsEndpoint, StateCollector
from crid.metrics.instruments import REGISTRY, observe_rpc, observe_runtime_call, record_pull
from crid.metrics.interceptor import MetricsInterceptor

__all__ = [
    "REGISTRY",
    "MetricsEndpoint",
    "MetricsInterceptor",
    "StateCollector",
    "observe_rpc",
    "observe_runtime_call",
    "record_pull",
]
