"""crid's ttrpc and NRI multiplexer over real unix socket pairs: framing, concurrency,
errors, timeouts, limits, and the byte layout containerd's Go peers expect."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crid._nri.ttrpc import ttrpc_pb2
from crid._nri.v1alpha1 import api_pb2 as api
from crid.errors import NRIClosedError, NRIError, NRIPluginError, NRIProtocolError, NRITimeoutError
from crid.nri import ALL_EVENTS, event_mask
from crid.nri.endpoint import prepare_socket
from crid.nri.mux import CHUNK, MAX_FRAME, Multiplexer
from crid.nri.ttrpc import (
    MESSAGE_LENGTH_MAX,
    Client,
    Frame,
    Server,
    StatusError,
    encode_frame,
    method,
    read_frame,
)

SERVICE = "nri.pkg.api.v1alpha1.Plugin"


async def _pair() -> tuple[Multiplexer, Multiplexer, socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ra, wa = await asyncio.open_unix_connection(sock=a)
    rb, wb = await asyncio.open_unix_connection(sock=b)
    return Multiplexer(ra, wa), Multiplexer(rb, wb), a, b


async def _mux_and_raw() -> tuple[Multiplexer, asyncio.StreamReader, asyncio.StreamWriter]:
    """A multiplexer on one end of a socket pair, plain streams on the other."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ra, wa = await asyncio.open_unix_connection(sock=a)
    rb, wb = await asyncio.open_unix_connection(sock=b)
    return Multiplexer(ra, wa), rb, wb


@pytest.fixture
async def muxes() -> AsyncIterator[tuple[Multiplexer, Multiplexer]]:
    left, right, _, _ = await _pair()
    yield left, right
    await left.close()
    await right.close()


def test_frame_layout_is_ttrpcs() -> None:
    data = encode_frame(Frame(stream_id=3, type=1, flags=0, payload=b"abc"))
    assert data == struct.pack(">IIBB", 3, 3, 1, 0) + b"abc"


def test_event_mask_bits_follow_nri() -> None:
    assert event_mask(api.RUN_POD_SANDBOX) == 1
    assert event_mask(api.CREATE_CONTAINER, api.STOP_CONTAINER) == (1 << 3) | (1 << 9)
    assert ALL_EVENTS == (1 << 14) - 1


async def test_mux_frames_are_id_and_length_then_payload_in_chunks() -> None:
    left, raw_reader, raw_writer = await _mux_and_raw()
    left.start()
    data = bytes(range(256)) * 40  # 10240 bytes: three frames
    await left.open(2).write(data)
    received = b""
    sizes = []
    while len(received) < len(data):
        conn_id, length = struct.unpack(">II", await raw_reader.readexactly(8))
        assert conn_id == 2
        sizes.append(length)
        received += await raw_reader.readexactly(length)
    assert received == data
    assert sizes == [CHUNK, CHUNK, len(data) - 2 * CHUNK]
    await left.close()
    raw_writer.close()


async def test_mux_demultiplexes_and_reassembles_frames() -> None:
    left, _, raw_writer = await _mux_and_raw()
    one, two = left.open(1), left.open(2)
    left.start()
    frames = [(2, b"wor"), (1, b"hel"), (7, b"dropped: nobody opened 7"), (1, b"lo"), (2, b"ld")]
    raw_writer.write(b"".join(struct.pack(">II", c, len(p)) + p for c, p in frames))
    await raw_writer.drain()
    assert await one.readexactly(5) == b"hello"
    assert await two.readexactly(5) == b"world"
    raw_writer.close()
    with pytest.raises(NRIClosedError):
        await one.readexactly(1)
    assert left.closed


async def test_mux_refuses_an_oversized_frame() -> None:
    left, _, raw_writer = await _mux_and_raw()
    conn = left.open(1)
    left.start()
    raw_writer.write(struct.pack(">II", 1, MAX_FRAME + 1))
    await raw_writer.drain()
    with pytest.raises(NRIProtocolError, match="exceeds"):
        await conn.readexactly(1)
    raw_writer.close()


async def test_ttrpc_calls_run_concurrently_and_answer_by_stream(
    muxes: tuple[Multiplexer, Multiplexer],
) -> None:
    left, right = muxes
    release = asyncio.Event()

    async def configure(request: api.ConfigureRequest) -> api.ConfigureResponse:
        if request.config == "slow":
            await release.wait()
        return api.ConfigureResponse(events=len(request.config))

    server = Server(
        right.open(1), {(SERVICE, "Configure"): method(api.ConfigureRequest, configure)}
    )
    client = Client(left.open(1))
    for part in (left, right, server, client):
        part.start()
    slow = asyncio.create_task(
        client.call(
            SERVICE, "Configure", api.ConfigureRequest(config="slow"), api.ConfigureResponse
        )
    )
    big = "x" * (3 * CHUNK)  # crosses several mux frames
    fast = await client.call(
        SERVICE, "Configure", api.ConfigureRequest(config=big), api.ConfigureResponse, timeout=5
    )
    assert fast.events == len(big)
    assert not slow.done()
    release.set()
    assert (await slow).events == 4
    await client.close()
    await server.close()


async def test_ttrpc_errors_unknown_methods_and_timeouts(
    muxes: tuple[Multiplexer, Multiplexer],
) -> None:
    left, right = muxes

    async def fail(request: api.ConfigureRequest) -> api.ConfigureResponse:
        if request.config == "status":
            raise StatusError(9, "not now")
        if request.config == "hang":
            await asyncio.sleep(30)
        raise RuntimeError("plugin broke")

    server = Server(right.open(1), {(SERVICE, "Configure"): method(api.ConfigureRequest, fail)})
    client = Client(left.open(1))
    for part in (left, right, server, client):
        part.start()

    async def call(config: str, name: str = "Configure", timeout: float = 5) -> None:
        request = api.ConfigureRequest(config=config)
        await client.call(SERVICE, name, request, api.ConfigureResponse, timeout=timeout)

    with pytest.raises(NRIPluginError, match="plugin broke") as caught:
        await call("x")
    assert caught.value.code == 2
    with pytest.raises(NRIPluginError, match="not now") as caught:
        await call("status")
    assert caught.value.code == 9
    with pytest.raises(NRIPluginError, match="not implemented") as caught:
        await call("x", name="Synchronize")
    assert caught.value.code == 12
    with pytest.raises(NRITimeoutError, match=r"within 0\.2s"):
        await call("hang", timeout=0.2)
    await server.close()
    await right.close()
    with pytest.raises(NRIClosedError):
        await call("x")
    await client.close()


async def test_ttrpc_server_refuses_reused_or_even_stream_ids() -> None:
    left, right, _, _ = await _pair()

    async def configure(request: api.ConfigureRequest) -> api.ConfigureResponse:
        return api.ConfigureResponse()

    server = Server(
        right.open(1), {(SERVICE, "Configure"): method(api.ConfigureRequest, configure)}
    )
    right.start()
    left.start()
    server.start()
    conn = left.open(1)
    request = ttrpc_pb2.Request(service=SERVICE, method="Configure").SerializeToString()
    await conn.write(encode_frame(Frame(stream_id=1, type=1, payload=request)))
    answer = await read_frame(conn)
    assert answer.stream_id == 1 and answer.type == 2
    assert ttrpc_pb2.Response.FromString(answer.payload).status.code == 0
    await conn.write(encode_frame(Frame(stream_id=2, type=1, payload=request)))
    await conn.write(encode_frame(Frame(stream_id=3, type=1, payload=request)))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(read_frame(conn), 0.3)  # the server stopped at stream 2
    await server.close()
    await left.close()
    await right.close()


def test_oversized_ttrpc_message_is_refused() -> None:
    with pytest.raises(NRIProtocolError, match="exceeds"):
        encode_frame(Frame(stream_id=1, type=1, payload=b"x" * (MESSAGE_LENGTH_MAX + 1)))


def test_socket_path_stale_is_replaced_live_or_foreign_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nri" / "nri.sock"
    prepare_socket(path)
    assert path.parent.stat().st_mode & 0o777 == 0o700
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen()
    with pytest.raises(NRIError, match="in use by another runtime"):
        prepare_socket(path)
    live.close()  # the file stays behind, stale
    prepare_socket(path)
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(NRIError, match="not a socket"):
        prepare_socket(path)
