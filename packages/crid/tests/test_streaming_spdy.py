"""The SPDY/3.1 codec and sessions: wire format against hand-built frames, round trips,
malformed input (a property test: anything raises SpdyProtocolError or parses, nothing
else), flow control between two sessions, and garbage sent to the live server."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crid.errors import SpdyProtocolError
from crid.streaming import PortForwardRequest, ServerOptions, StreamingServer
from crid.streaming.channel import StreamChannel
from crid.streaming.spdy import Session
from crid.streaming.spdy._dictionary import DICTIONARY
from crid.streaming.spdy.frames import (
    DataFrame,
    FrameEncoder,
    FrameParser,
    GoAway,
    Headers,
    Ping,
    RstStream,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
)

from ._streaming_client import SpdyClient

FRAME_TYPES = (
    DataFrame,
    SynStream,
    SynReply,
    Headers,
    RstStream,
    Settings,
    Ping,
    GoAway,
    WindowUpdate,
)


def block(pairs: list[tuple[bytes, bytes]]) -> bytes:
    out = struct.pack(">I", len(pairs))
    for name, value in pairs:
        out += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
    return out


def test_the_dictionary_is_the_spdy3_one() -> None:
    assert len(DICTIONARY) == 1423
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert b"\x00\x00\x00\x06origin100101201202" in DICTIONARY


def test_a_hand_built_syn_stream_parses() -> None:
    raw = block([(b"streamtype", b"error"), (b"port", b"80\x0081")])
    deflate = zlib.compressobj(zdict=DICTIONARY)
    compressed = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIBB", 3, 0, 2 << 5, 0) + compressed
    frame = struct.pack(">HHI", 0x8003, 1, (0x01 << 24) | len(payload)) + payload
    (parsed,) = FrameParser().feed(frame)
    assert parsed == SynStream(
        stream_id=3, priority=2, fin=True, headers=(("streamtype", "error"), ("port", "80\x0081"))
    )


def test_encoded_headers_decompress_with_plain_zlib() -> None:
    encoded = FrameEncoder().encode(SynReply(stream_id=5, headers=(("X-Name", "v"),)))
    assert encoded[:4] == b"\x80\x03\x00\x02"
    inflate = zlib.decompressobj(zdict=DICTIONARY)
    assert inflate.decompress(encoded[12:]) == block([(b"x-name", b"v")])


def test_data_frames_on_the_wire() -> None:
    assert FrameEncoder().encode(DataFrame(stream_id=7, data=b"abc", fin=True)) == (
        b"\x00\x00\x00\x07\x01\x00\x00\x03abc"
    )


ids = st.integers(1, 0x7FFFFFFF)
names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
header_lists = st.lists(st.tuples(names, st.text(max_size=30)), max_size=6).map(tuple)
frames = st.one_of(
    st.builds(DataFrame, stream_id=ids, data=st.binary(max_size=300), fin=st.booleans()),
    st.builds(
        SynStream,
        stream_id=ids,
        headers=header_lists,
        associated_id=st.integers(0, 0x7FFFFFFF),
        priority=st.integers(0, 7),
        fin=st.booleans(),
        unidirectional=st.booleans(),
    ),
    st.builds(SynReply, stream_id=ids, headers=header_lists, fin=st.booleans()),
    st.builds(Headers, stream_id=ids, headers=header_lists, fin=st.booleans()),
    st.builds(RstStream, stream_id=ids, status=st.integers(1, 11)),
    st.builds(
        Settings,
        entries=st.lists(
            st.tuples(st.integers(0, 255), st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFFFFFF)),
            max_size=4,
        ).map(tuple),
    ),
    st.builds(Ping, ping_id=st.integers(0, 0xFFFFFFFF)),
    st.builds(GoAway, last_good_stream_id=st.integers(0, 0x7FFFFFFF), status=st.integers(0, 2)),
    st.builds(WindowUpdate, stream_id=st.integers(0, 0x7FFFFFFF), delta=ids),
)


@settings(deadline=None)
@given(st.lists(frames, max_size=8), st.integers(1, 64))
def test_frames_round_trip_in_any_chunking(sequence: list[Any], chunk: int) -> None:
    encoder, parser = FrameEncoder(), FrameParser()
    wire = b"".join(encoder.encode(frame) for frame in sequence)
    parsed = []
    for start in range(0, len(wire), chunk):
        parsed += parser.feed(wire[start : start + chunk])
    assert parsed == sequence


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=4), st.data())
def test_malformed_input_raises_protocol_error_or_parses(sequence: list[Any], data: Any) -> None:
    wire = bytearray(b"".join(FrameEncoder().encode(frame) for frame in sequence))
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(wire) - 1))
        wire[position] = data.draw(st.integers(0, 255))
    wire += data.draw(st.binary(max_size=40))
    with contextlib.suppress(SpdyProtocolError):
        for frame in FrameParser().feed(bytes(wire)):
            assert isinstance(frame, (*FRAME_TYPES,))


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_other_errors(garbage: bytes) -> None:
    with contextlib.suppress(SpdyProtocolError):
        for frame in FrameParser().feed(garbage):
            assert isinstance(frame, (*FRAME_TYPES,))


@pytest.mark.parametrize(
    "wire",
    [
        struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1",  # SPDY/2
        struct.pack(">HHI", 0x8003, 3, 4) + b"\0\0\0\1",  # short RST_STREAM
        struct.pack(">HHI", 0x8003, 9, 8) + b"\0\0\0\1\0\0\0\0",  # zero window delta
        struct.pack(">HHI", 0x8003, 1, 10) + b"\0" * 10,  # stream 0, empty header block
        struct.pack(">HHI", 0x8003, 2, 8) + b"\0\0\0\1garb",  # corrupt compression
        struct.pack(">HHI", 0x8003, 4, 4) + b"\0\0\0\5",  # SETTINGS count too large
    ],
)
def test_malformed_frames_are_rejected(wire: bytes) -> None:
    with pytest.raises(SpdyProtocolError):
        FrameParser().feed(wire)


def test_a_header_block_bomb_is_rejected() -> None:
    deflate = zlib.compressobj(zdict=DICTIONARY)
    bomb = block([(b"x", b"a" * (2 << 20))])
    compressed = deflate.compress(bomb) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">I", 1) + compressed
    with pytest.raises(SpdyProtocolError, match="larger than"):
        FrameParser().feed(struct.pack(">HHI", 0x8003, 2, len(payload)) + payload)


def test_unknown_control_frames_are_skipped() -> None:
    unknown = struct.pack(">HHI", 0x8003, 42, 3) + b"abc"
    ping = FrameEncoder().encode(Ping(ping_id=1))
    assert FrameParser().feed(unknown + ping) == [Ping(ping_id=1)]


async def session_pair() -> tuple[Session, Session]:
    left, right = socket.socketpair()
    a = StreamChannel(*await asyncio.open_connection(sock=left))
    b = StreamChannel(*await asyncio.open_connection(sock=right))
    return Session(a, client=True, window=64 * 1024), Session(b, client=False)


async def test_a_flow_controlled_reader_bounds_what_is_in_flight() -> None:
    client, server = await session_pair()
    tasks = [asyncio.create_task(client.run()), asyncio.create_task(server.run())]
    try:
        await client.start()
        opened = await client.open_stream((("streamtype", "stdout"),))
        incoming = await server.accept()
        assert incoming is not None and incoming.header("streamtype") == "stdout"
        await incoming.reply()
        await opened.wait_reply()
        payload = bytes(range(256)) * 4096  # 1 MiB
        writer = asyncio.create_task(incoming.write(payload))
        await asyncio.sleep(0.1)
        # Nobody reads yet: the server may not have sent more than the announced window.
        assert opened.buffered <= 64 * 1024
        assert not writer.done()
        received = bytearray()
        while len(received) < len(payload):
            received += await opened.read()
            assert opened.buffered <= 64 * 1024
        await writer
        assert bytes(received) == payload
        assert server.flow_controlled
    finally:
        await client.close()
        await server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_pings_are_echoed_and_a_peer_without_windows_is_not_held_to_them() -> None:
    left, right = socket.socketpair()
    server = Session(StreamChannel(*await asyncio.open_connection(sock=right)), client=False)
    runner = asyncio.create_task(server.run())
    reader, writer = await asyncio.open_connection(sock=left)
    raw = SpdyClient(reader, writer, b"", "test", flow_control=False, window=65536)
    try:
        stream_id = await asyncio.gather(
            raw.create_stream({"streamtype": "data"}), _reply_first(server)
        )
        stream = stream_id[1]
        await stream.write(b"z" * (1 << 20))  # far past 64 KiB, no WINDOW_UPDATE ever sent
        await stream.close()
        assert len(await raw.read_all(stream_id[0])) == 1 << 20
        raw.writer.write(FrameEncoder().encode(Ping(ping_id=2)))  # odd ids are the client's
        raw.writer.write(raw.encoder.encode(Ping(ping_id=1)))
        await raw.writer.drain()
        await asyncio.wait_for(raw.pinged.wait(), 5)
        await asyncio.sleep(0.05)
        assert raw.pings_returned == 1  # its own ping came back; the server's id was not echoed
    finally:
        await raw.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def _reply_first(server: Session) -> Any:
    stream = await server.accept()
    assert stream is not None
    await stream.reply()
    return stream


@pytest.fixture
async def echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.root
async def test_garbage_closes_that_connection_and_the_server_keeps_serving(
    echo_server: int,
) -> None:
    streaming = StreamingServer(None, ServerOptions())  # type: ignore[arg-type]
    await streaming.start()
    request = PortForwardRequest(sandbox_id="host", netns="/proc/self/ns/net", ports=(echo_server,))
    rng = random.Random(8)
    valid = FrameEncoder().encode(SynStream(stream_id=1, headers=(("streamtype", "error"),)))
    try:
        # A frame from another SPDY version: GOAWAY, then the server closes (no EOF needed).
        client = await SpdyClient.connect(streaming.url_for(request), ["portforward.k8s.io"])
        client.writer.write(struct.pack(">HHI", 0x8002, 6, 4) + b"\0\0\0\1")
        await client.writer.drain()
        await asyncio.wait_for(client._task, 5)
        assert client.goaway
        await client.close()
        for _ in range(60):
            garbage = bytearray(valid + bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
            for _ in range(rng.randrange(1, 5)):
                garbage[rng.randrange(len(garbage))] = rng.randrange(256)
            url = streaming.url_for(request)
            client = await SpdyClient.connect(url, ["portforward.k8s.io"])
            client.writer.write(bytes(garbage))
            await client.writer.drain()
            client.writer.write_eof()
            await asyncio.wait_for(client._task, 5)  # the server closed the connection
            await client.close()
        client = await SpdyClient.connect(streaming.url_for(request), ["portforward.k8s.io"])
        try:
            headers = {"port": str(echo_server), "requestid": "0"}
            error = await client.create_stream({"streamtype": "error", **headers})
            data = await client.create_stream({"streamtype": "data", **headers})
            await client.write(data, b"still alive")
            assert await client.read(data) == b"still alive"
            await client.close_stream(data)
            assert await client.read_all(error) == b""
        finally:
            await client.close()
    finally:
        await streaming.stop()
