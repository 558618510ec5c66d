"""A server-side WebSocket over asyncio streams (wsproto), and a byte pipe through it.

Messages come out whole (fragments joined); pings are answered; a close is answered
and ends :meth:`WebSocket.receive`. :class:`TunnelChannel` turns binary messages into a
byte stream, which is how client-go tunnels SPDY (port forwarding) inside a WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib

from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from crid.streaming.channel import Activity

__all__ = ["MAX_MESSAGE", "TunnelChannel", "WebSocket"]

MAX_MESSAGE = 16 * 1024 * 1024


class WebSocket:
    """An accepted WebSocket connection."""

    def __init__(
        self,
        ws: WSConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        activity: Activity | None = None,
    ) -> None:
        self.activity = activity or Activity()
        self._ws = ws
        self._reader = reader
        self._writer = writer
        self._pending: list[bytes | str] = []
        self._partial: list[bytes | str] = []
        self._lock = asyncio.Lock()
        self.closed = False

    async def _flush(self, data: bytes) -> None:
        self.activity.touch()
        async with self._lock:
            self._writer.write(data)
            await self._writer.drain()

    async def receive(self) -> bytes | str | None:
        """The next whole message; None once the connection is closed."""
        while not self._pending:
            if self.closed:
                return None
            try:
                data = await self._reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            self.activity.touch()
            try:
                self._ws.receive_data(data or None)
                await self._handle_events()
            except (RemoteProtocolError, LocalProtocolError, ConnectionError, OSError):
                self.closed = True
            if not data:
                self.closed = True
        return self._pending.pop(0)

    async def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, Message):
                assert isinstance(event, BytesMessage | TextMessage)
                self._partial.append(
                    bytes(event.data) if isinstance(event.data, bytearray) else event.data
                )
                if sum(len(p) for p in self._partial) > MAX_MESSAGE:
                    raise RemoteProtocolError("message too large", event_hint=None)
                if event.message_finished:
                    joined: bytes | str = (
                        "".join(p for p in self._partial if isinstance(p, str))
                        if isinstance(event, TextMessage)
                        else b"".join(p for p in self._partial if isinstance(p, bytes))
                    )
                    self._pending.append(joined)
                    self._partial = []
            elif isinstance(event, Ping):
                await self._flush(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._flush(self._ws.send(event.response()))
                self.closed = True

    async def send(self, data: bytes | str) -> None:
        """Send one message (binary for bytes, text for str)."""
        if self.closed:
            raise ConnectionError("websocket closed")
        message = BytesMessage(data=data) if isinstance(data, bytes) else TextMessage(data=data)
        try:
            await self._flush(self._ws.send(message))
        except LocalProtocolError as err:
            raise ConnectionError(str(err)) from err

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (politely when still open)."""
        if self._ws.state is ConnectionState.OPEN:
            with contextlib.suppress(LocalProtocolError, ConnectionError, OSError):
                await self._flush(self._ws.send(CloseConnection(code=code, reason=reason)))
        self.closed = True
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


class TunnelChannel:
    """A byte stream carried in binary WebSocket messages (``SPDY/3.1+portforward.k8s.io``)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> bytes:
        while True:
            message = await self.websocket.receive()
            if message is None:
                return b""
            if isinstance(message, bytes) and message:
                return message

    async def send(self, data: bytes) -> None:
        await self.websocket.send(data)

    async def close(self) -> None:
        await self.websocket.close()
