"""Attach over SPDY and WebSocket to containers whose stdio conmon holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.server import Daemon

from ._observe import pod
from ._streaming_client import SpdyClient, WebSocketClient
from ._streaming_support import ctx_of, running

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/bin/busybox")]


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


async def read_until(client: SpdyClient, stream: int, wanted: bytes, timeout: float = 10) -> bytes:
    seen = b""
    async with asyncio.timeout(timeout):
        while wanted not in seen:
            chunk = await client.read(stream)
            assert chunk, f"stream ended before {wanted!r}: {seen!r}"
            seen += chunk
    return seen


async def test_attach_echoes_stdin_and_detaching_leaves_the_container_running(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    script = "echo started; while read line; do echo out:$line; echo err:$line >&2; done"
    async with pod(ctx) as sandbox, running(ctx, sandbox, ["sh", "-c", script], stdin=True) as c:
        for round_ in range(2):  # a second attach after the first detached
            reply = await stub.Attach(
                api_pb2.AttachRequest(container_id=c.id, stdin=True, stdout=True, stderr=True)
            )
            client = await SpdyClient.connect(reply.url, ["v4.channel.k8s.io"])
            try:
                await client.create_stream({"streamtype": "error"})
                stdin = await client.create_stream({"streamtype": "stdin"})
                stdout = await client.create_stream({"streamtype": "stdout"})
                stderr = await client.create_stream({"streamtype": "stderr"})
                await client.write(stdin, b"hello %d\n" % round_)
                await read_until(client, stdout, b"out:hello %d\n" % round_)
                await read_until(client, stderr, b"err:hello %d\n" % round_)
            finally:
                await client.close()
            state = await ctx.handler().runtime.state(c.id)
            assert state.status == "running"


async def test_attach_to_a_terminal_applies_resizes(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    script = "while read line; do echo size:$(stty size); done"
    async with (
        pod(ctx) as sandbox,
        running(ctx, sandbox, ["sh", "-c", script], stdin=True, tty=True) as c,
    ):
        reply = await stub.Attach(
            api_pb2.AttachRequest(container_id=c.id, stdin=True, stdout=True, tty=True)
        )
        client = await SpdyClient.connect(reply.url, ["v4.channel.k8s.io"])
        try:
            await client.create_stream({"streamtype": "error"})
            stdin = await client.create_stream({"streamtype": "stdin"})
            stdout = await client.create_stream({"streamtype": "stdout"})
            resize = await client.create_stream({"streamtype": "resize"})
            await client.write(resize, b'{"Width":101,"Height":41}\n')
            await asyncio.sleep(0.3)
            await client.write(stdin, b"x\r")
            await read_until(client, stdout, b"size:41 101")
        finally:
            await client.close()


async def test_websocket_attach(daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub) -> None:
    ctx = ctx_of(daemon)
    script = "while read line; do echo got:$line; done"
    async with pod(ctx) as sandbox, running(ctx, sandbox, ["sh", "-c", script], stdin=True) as c:
        reply = await stub.Attach(
            api_pb2.AttachRequest(container_id=c.id, stdin=True, stdout=True, stderr=True)
        )
        client = await WebSocketClient.connect(reply.url, ["v5.channel.k8s.io"])
        try:
            await client.send(b"\x00ping\n")
            seen = b""
            async with asyncio.timeout(10):
                while b"got:ping" not in seen:
                    message = await client.receive()
                    assert isinstance(message, bytes)
                    if message[0] == 1:
                        seen += message[1:]
        finally:
            await client.close()
        assert (await ctx.handler().runtime.state(c.id)).status == "running"
