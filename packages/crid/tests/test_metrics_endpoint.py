"""The Prometheus endpoint, scraped over loopback: RPC counts, errors and latencies per
method, pods and containers by state, OCI runtime latencies, image pulls."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.context import Context
from crid.metrics import record_pull
from crid.server import Daemon

from ._observe import container, pod
from .conftest import make_config

pytestmark = pytest.mark.binaries("runc", "conmon")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    _, config = make_config(tmp_path, "[crid.metrics]\nenable_metrics = true\nmetrics_port = 0\n")
    running = Daemon(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop(grace=0)


def ctx_of(daemon: Daemon) -> Context:
    assert daemon.context is not None
    return daemon.context


def url(daemon: Daemon) -> str:
    assert daemon.metrics is not None
    return f"http://127.0.0.1:{daemon.metrics.port}/metrics"


async def scrape(daemon: Daemon) -> Samples:
    def get() -> str:
        with urllib.request.urlopen(url(daemon), timeout=5) as reply:
            assert reply.status == 200
            return str(reply.read().decode())

    text = await asyncio.to_thread(get)
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_rpc_counts_errors_latencies_and_state(daemon: Daemon) -> None:
    assert daemon.metrics is not None and daemon.metrics.port > 0
    before = await scrape(daemon)
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        stub = api_pb2_grpc.RuntimeServiceStub(ch)
        for _ in range(3):
            await stub.Version(api_pb2.VersionRequest())
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.ContainerStats(api_pb2.ContainerStatsRequest(container_id="f" * 64))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Exec(api_pb2.ExecRequest())  # answered UNIMPLEMENTED
        assert [m async for m in stub.StreamContainers(api_pb2.StreamContainersRequest())] == []
    record_pull(12345, 0.75)
    after = await scrape(daemon)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("crid_grpc_requests_total", method="Version", code="OK") == 3
    assert delta("crid_grpc_request_duration_seconds_count", method="Version") == 3
    assert delta("crid_grpc_request_duration_seconds_sum", method="Version") > 0
    assert delta("crid_grpc_requests_total", method="ContainerStats", code="NOT_FOUND") == 2
    assert delta("crid_grpc_errors_total", method="ContainerStats", code="NOT_FOUND") == 2
    assert delta("crid_grpc_errors_total", method="Exec", code="UNIMPLEMENTED") == 1
    assert delta("crid_grpc_requests_total", method="StreamContainers", code="OK") == 1
    assert delta("crid_grpc_errors_total", method="Version", code="OK") == 0
    assert delta("crid_image_pulls_total") == 1
    assert delta("crid_image_pull_bytes_total") == 12345
    assert delta("crid_image_pull_duration_seconds_count") == 1
    assert delta("crid_image_pull_duration_seconds_bucket", le="1.0") == 1
    assert value(after, "crid_pods", state="ready") == 0
    assert value(after, "crid_containers", state="running") == 0
    assert ("crid_containers", (("state", "exited"),)) in after  # every state is reported


@pytest.mark.root
@pytest.mark.binaries("/bin/busybox")
async def test_state_gauges_and_runtime_latencies_of_real_containers(daemon: Daemon) -> None:
    ctx = ctx_of(daemon)
    before = await scrape(daemon)
    async with (
        pod(ctx) as sandbox,
        container(ctx, sandbox, ["sleep", "30"]),
        container(ctx, sandbox, ["sleep", "30"], start=False),
    ):
        during = await scrape(daemon)
        assert value(during, "crid_pods", state="ready") == 1
        assert value(during, "crid_containers", state="running") == 1
        assert value(during, "crid_containers", state="created") == 1
    after = await scrape(daemon)
    assert value(after, "crid_pods", state="ready") == 0
    assert value(after, "crid_containers", state="running") == 0

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    runc = {"runtime": "runc"}
    assert delta("crid_oci_runtime_call_duration_seconds_count", operation="create", **runc) == 2
    assert delta("crid_oci_runtime_call_duration_seconds_count", operation="start", **runc) == 1
    assert delta("crid_oci_runtime_call_duration_seconds_count", operation="delete", **runc) == 2
    assert delta("crid_oci_runtime_call_duration_seconds_sum", operation="create", **runc) > 0.005
    assert delta("crid_oci_runtime_call_errors_total", operation="create", **runc) == 0


async def test_endpoint_closes_with_the_daemon_and_is_off_by_default(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    _, config = make_config(
        tmp_path / "on", "[crid.metrics]\nenable_metrics = true\nmetrics_port = 0\n"
    )
    running = Daemon(config)
    await running.start()
    address = url(running)
    await scrape(running)
    await running.stop(grace=0)
    assert running.metrics is None
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(urllib.request.urlopen, address, None, 2)
    (tmp_path / "off").mkdir()
    _, config = make_config(tmp_path / "off")
    running = Daemon(config)
    await running.start()
    try:
        assert running.metrics is None
    finally:
        await running.stop(grace=0)
