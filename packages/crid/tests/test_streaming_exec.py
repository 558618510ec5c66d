"""Exec over SPDY and WebSocket against real containers, through the daemon's RPC and URL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.server import Daemon
from crid.state import Container

from ._observe import pod
from ._streaming_client import spdy_command, websocket_command
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


@pytest.fixture
async def sleeper(daemon: Daemon) -> AsyncIterator[Container]:
    ctx = ctx_of(daemon)
    async with pod(ctx) as sandbox, running(ctx, sandbox, ["sleep", "600"]) as record:
        yield record


async def exec_url(stub: api_pb2_grpc.RuntimeServiceStub, container: Container, cmd: list[str],
                   *, tty: bool = False, stdin: bool = False, stderr: bool = True) -> str:  # fmt: skip
    reply = await stub.Exec(
        api_pb2.ExecRequest(container_id=container.id, cmd=cmd, tty=tty, stdin=stdin,
                            stdout=True, stderr=stderr and not tty)  # fmt: skip
    )
    return reply.url


async def test_exec_without_tty_separates_stdout_and_stderr_and_reports_success(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    url = await exec_url(stub, sleeper, ["sh", "-c", "echo out; echo err >&2"])
    assert url.startswith("http://127.0.0.1:")
    result = await spdy_command(url)
    assert result.protocol == "v5.channel.k8s.io"
    assert (result.stdout, result.stderr) == (b"out\n", b"err\n")
    assert result.status == {"metadata": {}, "status": "Success"}
    assert result.exit_code == 0
