"""crid's process-wide Prometheus instruments and the functions that feed them.

They live in one registry of their own (not prometheus-client's global one), so a program
that embeds crid keeps its own metrics apart. prometheus-client (~14 MiB) is imported only
when recording is turned on: by :func:`enable`, which the metrics endpoint and the RPC
interceptor call (both exist only with ``[crid.metrics] enable_metrics``), or by reading
:data:`REGISTRY`. Until then the ``observe_*``/``record_*`` functions do nothing, which
loses nothing: without the endpoint nobody can read what they would have counted.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    REGISTRY: CollectorRegistry  # module __getattr__: enable()

__all__ = [
    "REGISTRY",
    "enable",
    "enabled",
    "observe_rpc",
    "observe_runtime_call",
    "record_pull",
]

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
_PULL_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class _Instruments:
    """Every instrument, registered in one registry of crid's own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.rpc_requests: Counter = Counter(
            "crid_grpc_requests_total",
            "CRI gRPC calls handled, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.rpc_errors: Counter = Counter(
            "crid_grpc_errors_total",
            "CRI gRPC calls that ended with a status other than OK, by method and code.",
            ["method", "code"],
            registry=registry,
        )
        self.rpc_latency: Histogram = Histogram(
            "crid_grpc_request_duration_seconds",
            "Time to answer a CRI gRPC call (a stream: until its last message), by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.runtime_latency: Histogram = Histogram(
            "crid_oci_runtime_call_duration_seconds",
            "Time of one OCI runtime command"
            " (create under conmon, start, kill, delete, update...).",
            ["runtime", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.runtime_errors: Counter = Counter(
            "crid_oci_runtime_call_errors_total",
            "OCI runtime commands that failed, by runtime and operation.",
            ["runtime", "operation"],
            registry=registry,
        )
        self.pulls: Counter = Counter("crid_image_pulls_total", "Images pulled.", registry=registry)
        self.pull_bytes: Counter = Counter(
            "crid_image_pull_bytes_total", "Bytes downloaded by image pulls.", registry=registry
        )
        self.pull_duration: Histogram = Histogram(
            "crid_image_pull_duration_seconds",
            "Time of one image pull.",
            buckets=_PULL_BUCKETS,
            registry=registry,
        )


_active: _Instruments | None = None
_lock = threading.Lock()


def enable() -> CollectorRegistry:
    """Turn recording on (importing prometheus-client once); crid's registry."""
    global _active
    with _lock:
        if _active is None:
            _active = _Instruments()
        return _active.registry


def enabled() -> bool:
    """Whether recording is on."""
    return _active is not None


def __getattr__(name: str) -> Any:
    if name == "REGISTRY":
        return enable()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def observe_rpc(method: str, code: str, seconds: float) -> None:
    """Count one finished CRI call (``code`` is the gRPC status name, e.g. ``NOT_FOUND``)."""
    active = _active
    if active is None:
        return
    active.rpc_requests.labels(method, code).inc()
    if code != "OK":
        active.rpc_errors.labels(method, code).inc()
    active.rpc_latency.labels(method).observe(seconds)


def observe_runtime_call(runtime: str, operation: str, seconds: float, *, ok: bool) -> None:
    """Record one OCI runtime command's duration (and whether it failed)."""
    active = _active
    if active is None:
        return
    active.runtime_latency.labels(runtime, operation).observe(seconds)
    if not ok:
        active.runtime_errors.labels(runtime, operation).inc()


def record_pull(size_bytes: int, seconds: float) -> None:
    """Record one finished image pull: the bytes it downloaded and how long it took."""
    active = _active
    if active is None:
        return
    active.pulls.inc()
    active.pull_bytes.inc(max(size_bytes, 0))
    active.pull_duration.observe(max(seconds, 0.0))
