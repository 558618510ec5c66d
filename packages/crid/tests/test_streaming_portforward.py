"""Port forwarding into a pod's own network namespace, over SPDY and tunnelled in WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.server import Daemon
from crid.state import Sandbox

from ._streaming_client import SpdyClient, WebSocketClient
from ._streaming_support import ctx_of, net_pod, running

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/bin/busybox", "ip")]

HTTPD = "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"


@pytest.fixture
async def daemon(config: Config) -> AsyncIterator[Daemon]:
    started = Daemon(config)
    await started.start()
    try:
        yield started
    finally:
        await started.stop(grace=0)


@pytest.fixture
async def stub(daemon: Daemon) -> AsyncIterator[api_pb2_grpc.RuntimeServiceStub]:
    async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as ch:
        yield api_pb2_grpc.RuntimeServiceStub(ch)


@pytest.fixture
async def web_pod(daemon: Daemon) -> AsyncIterator[Sandbox]:
    ctx = ctx_of(daemon)
    async with net_pod(ctx) as sandbox, running(ctx, sandbox, ["sh", "-c", HTTPD]):
        yield sandbox


async def fetch(client: SpdyClient, request_id: int, port: int = 8080) -> tuple[bytes, bytes]:
    """One forwarded connection, as kubectl port-forward opens it: error stream, then data."""
    headers = {"port": str(port), "requestid": str(request_id)}
    error = await client.create_stream({"streamtype": "error", **headers})
    data = await client.create_stream({"streamtype": "data", **headers})
    await client.write(data, b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
    body, failure = await asyncio.gather(client.read_all(data), client.read_all(error))
    return body, failure


async def wait_listening(client: SpdyClient) -> None:
    async with asyncio.timeout(10):
        for attempt in range(1000, 2000):
            _body, failure = await fetch(client, attempt)
            if not failure:
                return
            await asyncio.sleep(0.05)


async def test_several_connections_at_once_over_spdy(
    stub: api_pb2_grpc.RuntimeServiceStub, web_pod: Sandbox
) -> None:
    reply = await stub.PortForward(
        api_pb2.PortForwardRequest(pod_sandbox_id=web_pod.id, port=[8080, 9])
    )
    client = await SpdyClient.connect(reply.url, ["portforward.k8s.io"])
    try:
        assert client.protocol == "portforward.k8s.io"
        await wait_listening(client)
        results = await asyncio.gather(*(fetch(client, i) for i in range(12)))
        for body, failure in results:
            assert failure == b""
            assert body.startswith(b"HTTP/1.") and body.endswith(b"hello-from-pod\n")
        # Nothing listens on 9 inside the pod: the error stream says so, others go on.
        body, failure = await fetch(client, 99, port=9)
        assert body == b"" and b"port 9" in failure and b"refused" in failure.lower()
        # The URL is bound to the ports it was issued for.
        body, failure = await fetch(client, 98, port=22)
        assert body == b"" and b"not requested" in failure
        again, failure = await fetch(client, 100)
        assert failure == b"" and again.endswith(b"hello-from-pod\n")
    finally:
        await client.close()


async def test_the_pod_port_is_not_the_host_port(
    stub: api_pb2_grpc.RuntimeServiceStub, web_pod: Sandbox
) -> None:
    with socket.socket() as probe:  # the host's loopback has no 8080 of the pod's
        assert probe.connect_ex(("127.0.0.1", 8080)) != 0


async def _tunnel(
    websocket: WebSocketClient,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Task[None]]:
    """A local socket pair whose far end is carried in binary WebSocket messages."""
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    far_reader, far_writer = await asyncio.open_connection(sock=theirs)

    async def outbound() -> None:
        while data := await far_reader.read(65536):
            await websocket.send(data)

    async def inbound() -> None:
        while (message := await websocket.receive()) is not None:
            if isinstance(message, bytes):
                far_writer.write(message)
                await far_writer.drain()
        far_writer.close()

    async def both() -> None:
        await asyncio.gather(outbound(), inbound())

    return reader, writer, asyncio.create_task(both())


async def test_spdy_tunnelled_in_websocket(
    stub: api_pb2_grpc.RuntimeServiceStub, web_pod: Sandbox
) -> None:
    reply = await stub.PortForward(
        api_pb2.PortForwardRequest(pod_sandbox_id=web_pod.id, port=[8080])
    )
    websocket = await WebSocketClient.connect(reply.url, ["SPDY/3.1+portforward.k8s.io"])
    assert websocket.subprotocol == "SPDY/3.1+portforward.k8s.io"
    reader, writer, pump = await _tunnel(websocket)
    client = SpdyClient(reader, writer, b"", "portforward.k8s.io", flow_control=False, window=65536)
    try:
        await wait_listening(client)
        results = await asyncio.gather(*(fetch(client, i) for i in range(5)))
        assert all(body.endswith(b"hello-from-pod\n") and not err for body, err in results)
    finally:
        await client.close()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await websocket.close()
