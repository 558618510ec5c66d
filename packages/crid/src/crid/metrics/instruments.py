"""crid's process-wide Prometheus instruments and the functions that feed them.

They live in one :data:`REGISTRY` of their own (not prometheus-client's global one), so a
program that embeds crid keeps its own metrics apart. Recording is cheap and always on;
only serving them needs ``[crid.metrics] enable_metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "REGISTRY",
    "observe_rpc",
    "observe_runtime_call",
    "record_pull",
]

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_PULL_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

RPC_REQUESTS = Counter(
    "crid_grpc_requests_total",
    "CRI gRPC calls handled, by method and status code.",
    ["method", "code"],
    registry=REGISTRY,
)
RPC_ERRORS = Counter(
    "crid_grpc_errors_total",
    "CRI gRPC calls that ended with a status other than OK, by method and code.",
    ["method", "code"],
    registry=REGISTRY,
)
RPC_LATENCY = Histogram(
    "crid_grpc_request_duration_seconds",
    "Time to answer a CRI gRPC call (a stream: until its last message), by method.",
    ["method"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RUNTIME_LATENCY = Histogram(
    "crid_oci_runtime_call_duration_seconds",
    "Time of one OCI runtime command (create under conmon, start, kill, delete, update...).",
    ["runtime", "operation"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RUNTIME_ERRORS = Counter(
    "crid_oci_runtime_call_errors_total",
    "OCI runtime commands that failed, by runtime and operation.",
    ["runtime", "operation"],
    registry=REGISTRY,
)
PULLS = Counter("crid_image_pulls_total", "Images pulled.", registry=REGISTRY)
PULL_BYTES = Counter(
    "crid_image_pull_bytes_total", "Bytes downloaded by image pulls.", registry=REGISTRY
)
PULL_DURATION = Histogram(
    "crid_image_pull_duration_seconds",
    "Time of one image pull.",
    buckets=_PULL_BUCKETS,
    registry=REGISTRY,
)


def observe_rpc(method: str, code: str, seconds: float) -> None:
    """Count one finished CRI call (``code`` is the gRPC status name, e.g. ``NOT_FOUND``)."""
    RPC_REQUESTS.labels(method, code).inc()
    if code != "OK":
        RPC_ERRORS.labels(method, code).inc()
    RPC_LATENCY.labels(method).observe(seconds)


def observe_runtime_call(runtime: str, operation: str, seconds: float, *, ok: bool) -> None:
    """Record one OCI runtime command's duration (and whether it failed)."""
    RUNTIME_LATENCY.labels(runtime, operation).observe(seconds)
    if not ok:
        RUNTIME_ERRORS.labels(runtime, operation).inc()


def record_pull(size_bytes: int, seconds: float) -> None:
    """Record one finished image pull: the bytes it downloaded and how long it took."""
    PULLS.inc()
    PULL_BYTES.inc(max(size_bytes, 0))
    PULL_DURATION.observe(max(seconds, 0.0))
