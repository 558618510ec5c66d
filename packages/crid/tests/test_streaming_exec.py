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
from crid.state import Container, ContainerState

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


async def exec_url(
    stub: api_pb2_grpc.RuntimeServiceStub,
    container: Container,
    cmd: list[str],
    *,
    tty: bool = False,
    stdin: bool = False,
    stderr: bool = True,
) -> str:
    reply = await stub.Exec(
        api_pb2.ExecRequest(
            container_id=container.id,
            cmd=cmd,
            tty=tty,
            stdin=stdin,
            stdout=True,
            stderr=stderr and not tty,
        )
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


async def test_stdin_is_piped_through_cat_and_half_close_ends_it(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    data = b"".join(b"line %d\n" % i for i in range(5000))
    url = await exec_url(stub, sleeper, ["cat"], stdin=True)
    result = await spdy_command(url, stdin=data)
    assert result.stdout == data
    assert result.exit_code == 0


async def test_exit_codes_as_structured_status_and_as_plain_message(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    result = await spdy_command(await exec_url(stub, sleeper, ["sh", "-c", "exit 7"]))
    assert result.status["reason"] == "NonZeroExitCode"
    assert result.exit_code == 7
    old = await spdy_command(
        await exec_url(stub, sleeper, ["sh", "-c", "exit 3"]), protocols=["v2.channel.k8s.io"]
    )
    assert old.protocol == "v2.channel.k8s.io"
    assert old.error == b"command terminated with non-zero exit code: exit status 3"
    missing = await spdy_command(await exec_url(stub, sleeper, ["/no/such/binary"]))
    assert missing.exit_code != 0


async def test_tty_exec_applies_the_initial_size_and_later_resizes(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    from ._streaming_client import SpdyClient

    url = await exec_url(
        stub, sleeper, ["sh", "-c", "sleep 0.2; stty size; read x; stty size"], tty=True, stdin=True
    )
    client = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
    try:
        error = await client.create_stream({"streamtype": "error"})
        stdin = await client.create_stream({"streamtype": "stdin"})
        stdout = await client.create_stream({"streamtype": "stdout"})
        resize = await client.create_stream({"streamtype": "resize"})
        await client.write(resize, b'{"Width":100,"Height":40}\n')
        seen = b""
        while b"40 100" not in seen:
            try:
                chunk = await asyncio.wait_for(client.read(stdout), 5)
            except TimeoutError:
                raise AssertionError(f"no resized terminal: {seen!r}") from None
            assert chunk, seen
            seen += chunk
        await client.write(resize, b'{"Width":132,"Height":50}\n')
        await asyncio.sleep(0.3)
        await client.write(stdin, b"go\r")
        rest = await asyncio.wait_for(client.read_all(stdout), 10)
        assert b"50 132" in rest
        assert b"\r\n" in seen + rest  # a terminal's line discipline, not a pipe
        assert await client.read_all(error) == b'{"metadata":{},"status":"Success"}'
    finally:
        await client.close()


async def test_tens_of_megabytes_flow_within_the_peer_window(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    size = 32 * 1024 * 1024
    cmd = ["head", "-c", str(size), "/dev/zero"]
    started = time.monotonic()
    result = await spdy_command(
        await exec_url(stub, sleeper, cmd), flow_control=True, window=256 * 1024
    )
    took = time.monotonic() - started
    assert len(result.stdout) == size and result.stdout.count(0) == size
    assert result.window_violations == 0  # type: ignore[attr-defined]
    assert 0 < result.max_outstanding <= 256 * 1024  # type: ignore[attr-defined]
    # A spdystream-like peer (no windows at all) gets the same bytes.
    plain = await spdy_command(await exec_url(stub, sleeper, cmd))
    assert len(plain.stdout) == size
    print(f"\n32 MiB through SPDY with flow control (256 KiB window) in {took:.2f}s")


async def test_a_slow_reader_throttles_the_command(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    cmd = ["head", "-c", str(2 * 1024 * 1024), "/dev/zero"]
    result = await spdy_command(
        await exec_url(stub, sleeper, cmd), flow_control=True, window=64 * 1024, slow_reader=0.001
    )
    assert len(result.stdout) == 2 * 1024 * 1024
    assert result.window_violations == 0  # type: ignore[attr-defined]


def _processes_with(marker: str) -> list[int]:
    import os

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if marker.encode() in handle.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def test_the_process_is_killed_when_the_client_goes_away(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    from ._streaming_client import SpdyClient

    marker = "4242.5"
    url = await exec_url(stub, sleeper, ["sleep", marker])
    client = await SpdyClient.connect(url, ["v4.channel.k8s.io"])
    await client.create_stream({"streamtype": "error"})
    await client.create_stream({"streamtype": "stdout"})
    await client.create_stream({"streamtype": "stderr"})
    deadline = time.monotonic() + 10
    while not _processes_with(marker):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await client.close()
    while _processes_with(marker):
        assert time.monotonic() < deadline, "exec'd process outlived its client"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"]
)
async def test_websocket_exec(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container, protocol: str
) -> None:
    v5 = protocol.startswith("v5.")
    cmd = ["sh", "-c", "cat; echo bye >&2; exit 4"] if v5 else ["sh", "-c", "echo hi; exit 4"]
    url = await exec_url(stub, sleeper, cmd, stdin=v5)
    result = await websocket_command(url, protocols=[protocol], stdin=b"abc\n" if v5 else None)
    assert result.protocol == protocol
    assert result.stdout == (b"abc\n" if v5 else b"hi\n")
    if v5:
        assert result.stderr == b"bye\n"
        assert result.closed_channels >= {1, 2}  # type: ignore[attr-defined]
    assert result.exit_code == 4


async def test_tokens_are_single_use_and_expire(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    from ._streaming_client import HTTPError

    started = time.monotonic()
    url = await exec_url(stub, sleeper, ["true"])
    assert (await spdy_command(url)).exit_code == 0
    print(f"\nExec RPC + SPDY session + runc exec of `true`: {time.monotonic() - started:.3f}s")
    with pytest.raises(HTTPError) as reused:
        await spdy_command(url)
    assert reused.value.status == 404
    assert daemon.streaming is not None
    daemon.streaming.tokens.ttl = 0.2
    late = await exec_url(stub, sleeper, ["true"])
    await asyncio.sleep(0.3)
    with pytest.raises(HTTPError) as expired:
        await spdy_command(late)
    assert expired.value.status == 404 and b"expired" in expired.value.body
    forged = url.rsplit("/", 1)[0] + "/" + "A" * 43
    with pytest.raises(HTTPError):
        await spdy_command(forged)


async def test_rpc_validation(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    import dataclasses

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.Exec(api_pb2.ExecRequest(container_id="f" * 64, cmd=["true"], stdout=True))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as nothing:
        await stub.Exec(api_pb2.ExecRequest(container_id=sleeper.id, cmd=["true"]))
    assert nothing.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as no_cmd:
        await stub.Exec(api_pb2.ExecRequest(container_id=sleeper.id, stdout=True))
    assert no_cmd.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as no_stdin:
        await stub.Attach(api_pb2.AttachRequest(container_id=sleeper.id, stdin=True, stdout=True))
    assert no_stdin.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    ctx = ctx_of(daemon)
    await ctx.registry.save_container(dataclasses.replace(sleeper, state=ContainerState.EXITED))
    for call in (
        stub.Exec(api_pb2.ExecRequest(container_id=sleeper.id, cmd=["true"], stdout=True)),
        stub.Attach(api_pb2.AttachRequest(container_id=sleeper.id, stdout=True)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as stopped:
            await call
        assert stopped.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as no_pod:
        await stub.PortForward(api_pb2.PortForwardRequest(pod_sandbox_id="e" * 64, port=[80]))
    assert no_pod.value.code() is grpc.StatusCode.NOT_FOUND


async def test_websocket_tty_exec_with_resize(
    stub: api_pb2_grpc.RuntimeServiceStub, sleeper: Container
) -> None:
    url = await exec_url(stub, sleeper, ["sh", "-c", "sleep 0.2; stty size"], tty=True)
    result = await websocket_command(url, protocols=["v5.channel.k8s.io"], resizes=[(90, 33)])
    assert result.stdout == b"33 90\r\n"
    assert result.stderr == b""
    assert result.exit_code == 0


async def test_a_container_that_stopped_after_the_url_was_issued_reports_a_failure(
    daemon: Daemon, stub: api_pb2_grpc.RuntimeServiceStub
) -> None:
    ctx = ctx_of(daemon)
    async with pod(ctx) as sandbox, running(ctx, sandbox, ["sleep", "600"]) as record:
        url = await exec_url(stub, record, ["true"])
        await ctx.handler().runtime.kill(record.id, 9)
        deadline = time.monotonic() + 10
        # the exit monitor records the exit: the connection's check reads the record
        while ctx.registry.container(record.id).state is not ContainerState.EXITED:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        result = await spdy_command(url)
        assert result.status["status"] == "Failure"
        assert "is exited, not running" in str(result.status["message"])
