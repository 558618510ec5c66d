"""A streaming client that talks to crid as the Kubernetes Go client (client-go) does.

SPDY: the upgrade request with ``X-Stream-Protocol-Version`` offers, then frame by frame:
a SYN_STREAM per stream (error first, then stdin, stdout, stderr, resize; each waits for
its SYN_REPLY, as spdystream's CreateStream does), DATA with FIN to half-close, pings
echoed. Like spdystream it neither announces a window nor sends WINDOW_UPDATE unless
``flow_control`` is on; then it behaves as a SPDY/3.1 peer (SETTINGS initial window,
WINDOW_UPDATE only for consumed data) and records whether the server ever sent more
than the window allowed. WebSocket: wsproto as a client, k8s channel framing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from crid.streaming.spdy.frames import (
    DataFrame,
    FrameEncoder,
    FrameParser,
    GoAway,
    RstStream,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
)
from crid.streaming.spdy.frames import Ping as SpdyPing


class HTTPError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body


async def _open(url: str, ca: ssl.SSLContext | None = None):  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    tls = ca if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    return parts, reader, writer


@dataclass
class _Stream:
    id: int
    chunks: deque[bytes] = field(default_factory=deque)
    readable: asyncio.Event = field(default_factory=asyncio.Event)
    replied: asyncio.Event = field(default_factory=asyncio.Event)
    fin: bool = False
    reset: int | None = None
    outstanding: int = 0  # received and not yet acknowledged


class SpdyClient:
    """One upgraded SPDY connection, driven frame by frame."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        leftover: bytes,
        protocol: str,
        *,
        flow_control: bool,
        window: int,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = protocol
        self.encoder, self.parser = FrameEncoder(), FrameParser()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.flow_control = flow_control
        self.window = window
        self.window_violations = 0
        self.max_outstanding = 0
        self.goaway = False
        self.pings_answered = 0
        self.pings_returned = 0
        self.pinged = asyncio.Event()
        self._task = asyncio.create_task(self._read_loop(leftover))

    @classmethod
    async def connect(
        cls,
        url: str,
        protocols: list[str],
        *,
        flow_control: bool = False,
        window: int = 64 * 1024,
        ca: ssl.SSLContext | None = None,
    ) -> SpdyClient:
        parts, reader, writer = await _open(url, ca)
        offers = "".join(f"X-Stream-Protocol-Version: {p}\r\n" for p in protocols)
        writer.write(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: Upgrade\r\n"
            f"Upgrade: SPDY/3.1\r\n{offers}Content-Length: 0\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            body = await reader.read()
            writer.close()
            raise HTTPError(status, body)
        protocol = ""
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("x-stream-protocol-version:"):
                protocol = line.split(":", 1)[1].strip()
        client = cls(reader, writer, b"", protocol, flow_control=flow_control, window=window)
        if flow_control:
            await client._send(Settings(entries=((0, 7, window),)))
        return client

    async def _send(self, frame) -> None:  # type: ignore[no-untyped-def]
        self.writer.write(self.encoder.encode(frame))
        await self.writer.drain()

    async def _read_loop(self, leftover: bytes) -> None:
        data = leftover
        try:
            while True:
                for frame in self.parser.feed(data):
                    await self._handle(frame)
                data = await self.reader.read(65536)
                if not data:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            for stream in self.streams.values():
                stream.fin = True
                stream.readable.set()
                stream.replied.set()

    async def _handle(self, frame) -> None:  # type: ignore[no-untyped-def]
        if isinstance(frame, DataFrame):
            stream = self.streams[frame.stream_id]
            if frame.data:
                stream.chunks.append(frame.data)
                stream.outstanding += len(frame.data)
                self.max_outstanding = max(self.max_outstanding, stream.outstanding)
                if self.flow_control and stream.outstanding > self.window:
                    self.window_violations += 1
            if frame.fin:
                stream.fin = True
            stream.readable.set()
        elif isinstance(frame, SynReply):
            self.streams[frame.stream_id].replied.set()
        elif isinstance(frame, RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream.reset = frame.status
                stream.readable.set()
                stream.replied.set()
        elif isinstance(frame, SpdyPing):
            if frame.ping_id % 2 == 0:
                await self._send(frame)
                self.pings_answered += 1
            else:
                self.pings_returned += 1
                self.pinged.set()
        elif isinstance(frame, GoAway):
            self.goaway = True
        elif isinstance(frame, SynStream):
            await self._send(RstStream(stream_id=frame.stream_id, status=3))
        elif isinstance(frame, WindowUpdate | Settings):
            pass

    async def create_stream(self, headers: dict[str, str]) -> int:
        stream = _Stream(self.next_id)
        self.next_id += 2
        self.streams[stream.id] = stream
        await self._send(SynStream(stream_id=stream.id, headers=tuple(headers.items())))
        await asyncio.wait_for(stream.replied.wait(), 10)
        return stream.id

    async def write(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        for start in range(0, max(len(data), 1), 16384):
            last = start + 16384 >= len(data)
            await self._send(
                DataFrame(stream_id=stream_id, data=data[start : start + 16384], fin=fin and last)
            )

    async def close_stream(self, stream_id: int) -> None:
        await self._send(DataFrame(stream_id=stream_id, data=b"", fin=True))

    async def read(self, stream_id: int) -> bytes:
        """Next chunk (empty at FIN); acknowledges it with WINDOW_UPDATE when flow-controlling."""
        stream = self.streams[stream_id]
        while not stream.chunks:
            if stream.fin or stream.reset is not None:
                return b""
            stream.readable.clear()
            await stream.readable.wait()
        data = stream.chunks.popleft()
        if self.flow_control:
            stream.outstanding -= len(data)
            with contextlib.suppress(ConnectionError):
                await self._send(WindowUpdate(stream_id=stream_id, delta=len(data)))
                await self._send(WindowUpdate(stream_id=0, delta=len(data)))
        else:
            stream.outstanding = 0
        return data

    async def read_all(self, stream_id: int) -> bytes:
        out = bytearray()
        while data := await self.read(stream_id):
            out += data
        return bytes(out)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


@dataclass
class ExecResult:
    stdout: bytes
    stderr: bytes
    error: bytes
    protocol: str

    @property
    def status(self) -> dict[str, object]:
        return json.loads(self.error) if self.error else {}

    @property
    def exit_code(self) -> int:
        """The exit code as client-go's v4 executor derives it from the error stream."""
        status = self.status
        if not status or status.get("status") == "Success":
            return 0
        assert status["reason"] == "NonZeroExitCode", status
        causes = status["details"]["causes"]  # type: ignore[index]
        return int(next(c["message"] for c in causes if c["reason"] == "ExitCode"))


async def spdy_command(
    url: str,
    *,
    stdin: bytes | None = None,
    tty: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    resizes: list[tuple[int, int]] | None = None,
    protocols: list[str] | None = None,
    flow_control: bool = False,
    window: int = 64 * 1024,
    slow_reader: float = 0.0,
    ca: ssl.SSLContext | None = None,
) -> ExecResult:
    """Run a remote command the way client-go's SPDY executor does; gather its output."""
    protocols = protocols or [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "v3.channel.k8s.io",
        "v2.channel.k8s.io",
        "channel.k8s.io",
    ]
    client = await SpdyClient.connect(
        url, protocols, flow_control=flow_control, window=window, ca=ca
    )
    try:
        error = await client.create_stream({"streamtype": "error"})
        ids: dict[str, int] = {}
        if stdin is not None:
            ids["stdin"] = await client.create_stream({"streamtype": "stdin"})
        if stdout:
            ids["stdout"] = await client.create_stream({"streamtype": "stdout"})
        if stderr and not tty:
            ids["stderr"] = await client.create_stream({"streamtype": "stderr"})
        if tty and client.protocol not in ("channel.k8s.io", "v2.channel.k8s.io"):
            ids["resize"] = await client.create_stream({"streamtype": "resize"})
            for width, height in resizes or []:
                await client.write(
                    ids["resize"], json.dumps({"Width": width, "Height": height}).encode() + b"\n"
                )

        async def reader(name: str) -> bytes:
            if name not in ids:
                return b""
            out = bytearray()
            while data := await client.read(ids[name]):
                out += data
                if slow_reader:
                    await asyncio.sleep(slow_reader)
            return bytes(out)

        if stdin is not None:
            await client.write(ids["stdin"], stdin)
            if not tty:
                await client.close_stream(ids["stdin"])
        out, err, status = await asyncio.gather(
            reader("stdout"), reader("stderr"), client.read_all(error)
        )
        result = ExecResult(stdout=out, stderr=err, error=status, protocol=client.protocol)
        result.window_violations = client.window_violations  # type: ignore[attr-defined]
        result.max_outstanding = client.max_outstanding  # type: ignore[attr-defined]
        return result
    finally:
        await client.close()


class WebSocketClient:
    """A WebSocket client connection (wsproto) with whole-message receive."""

    def __init__(
        self,
        ws: WSConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        subprotocol: str | None,
    ) -> None:
        self.ws, self.reader, self.writer = ws, reader, writer
        self.subprotocol = subprotocol
        self.pending: deque[bytes | str] = deque()
        self.partial: list[bytes | str] = []
        self.closed = False
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, subprotocols: list[str]) -> WebSocketClient:
        parts, reader, writer = await _open(url)
        ws = WSConnection(ConnectionType.CLIENT)
        writer.write(
            ws.send(Request(host=parts.netloc, target=parts.path, subprotocols=subprotocols))
        )
        await writer.drain()
        while True:
            data = await reader.read(65536)
            if not data:
                raise HTTPError(0, b"connection closed during handshake")
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    client = cls(ws, reader, writer, event.subprotocol)
                    return client
                if isinstance(event, RejectConnection):
                    writer.close()
                    raise HTTPError(event.status_code, b"")

    async def send(self, data: bytes | str) -> None:
        message = BytesMessage(data=data) if isinstance(data, bytes) else TextMessage(data=data)
        self.writer.write(self.ws.send(message))
        await self.writer.drain()

    async def receive(self) -> bytes | str | None:
        while not self.pending:
            if self.closed:
                return None
            data = await self.reader.read(65536)
            self.ws.receive_data(data or None)
            if not data:
                self.closed = True
            for event in self.ws.events():
                if isinstance(event, BytesMessage | TextMessage):
                    self.partial.append(event.data)
                    if event.message_finished:
                        joined = (b"" if isinstance(event, BytesMessage) else "").join(self.partial)  # type: ignore[attr-defined]
                        self.pending.append(joined)
                        self.partial = []
                elif isinstance(event, Ping):
                    self.writer.write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    with contextlib.suppress(Exception):
                        self.writer.write(self.ws.send(event.response()))
                    self.closed = True
        return self.pending.popleft()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(self.ws.send(CloseConnection(code=1000)))
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def websocket_command(
    url: str,
    *,
    protocols: list[str],
    stdin: bytes | None = None,
    close_stdin: bool = True,
    resizes: list[tuple[int, int]] | None = None,
) -> ExecResult:
    """Run a remote command over WebSocket channels as client-go's WebSocket executor does."""
    client = await WebSocketClient.connect(url, protocols)
    protocol = client.subprotocol or "channel.k8s.io"
    b64 = ".base64." in f".{protocol}"

    def frame(channel: int, payload: bytes) -> bytes | str:
        return (
            str(channel) + base64.b64encode(payload).decode() if b64 else bytes([channel]) + payload
        )

    try:
        for width, height in resizes or []:
            await client.send(frame(4, json.dumps({"Width": width, "Height": height}).encode()))
        if stdin is not None:
            await client.send(frame(0, stdin))
            if close_stdin and protocol.startswith("v5."):
                await client.send(bytes([255, 0]))
        out: dict[int, bytearray] = {1: bytearray(), 2: bytearray(), 3: bytearray()}
        closed: set[int] = set()
        while (message := await client.receive()) is not None:
            if isinstance(message, str):
                channel, payload = int(message[0]), base64.b64decode(message[1:])
            else:
                channel, payload = message[0], message[1:]
            if channel == 255:
                closed.add(payload[0])
            elif channel in out:
                out[channel] += payload
        result = ExecResult(
            stdout=bytes(out[1]), stderr=bytes(out[2]), error=bytes(out[3]), protocol=protocol
        )
        result.closed_channels = closed  # type: ignore[attr-defined]
        return result
    finally:
        await client.close()
