"""The streaming HTTP server: one asyncio server that takes SPDY/3.1 and WebSocket upgrades.

``Exec``/``Attach``/``PortForward`` RPCs register their validated request and get a URL
``<scheme>://<address>:<port>/<kind>/<token>``; the client then upgrades a request to
that URL. h11 reads the request; ``Upgrade: SPDY/3.1`` negotiates a protocol from the
client's ``X-Stream-Protocol-Version`` offers, ``Upgrade: websocket`` one from its
``Sec-WebSocket-Protocol`` offers (wsproto does the handshake). Tokens are used up by
the request that presents them, whatever happens next.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from crid.context import Context
from crid.errors import StreamTokenError
from crid.streaming.channel import Activity
from crid.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest, StreamRequest
from crid.streaming.tokens import TokenCache

__all__ = ["ServerOptions", "StreamingServer"]

_log = logging.getLogger(__name__)
_KINDS: dict[str, type[StreamRequest]] = {
    "exec": ExecRequest,
    "attach": AttachRequest,
    "portforward": PortForwardRequest,
}


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """Where and how the streaming server listens."""

    address: str = "127.0.0.1"
    port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    token_ttl: float = 60.0
    idle_timeout: float = 4 * 3600.0
    request_timeout: float = 30.0
    #: Connections served at once, sessions and handshakes together.
    max_connections: int = 512
    #: Connections that have not yet presented a valid URL (the unauthenticated ones).
    max_handshakes: int = 64


def _offers(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    values: list[str] = []
    for key, value in headers:
        if key == name:
            values += [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
    return values


class StreamingServer:
    """Issues streaming URLs and serves them."""

    def __init__(self, ctx: Context, options: ServerOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.tokens = TokenCache(ttl=options.token_ttl)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._handshakes = 0
        self.port = options.port

    @property
    def scheme(self) -> str:
        return "https" if self.options.tls_cert else "http"

    async def start(self) -> None:
        """Listen (with TLS when a certificate is configured)."""
        context = None
        if self.options.tls_cert:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            await asyncio.to_thread(
                context.load_cert_chain, self.options.tls_cert, self.options.tls_key or None
            )
        self._server = await asyncio.start_server(
            self._accept, self.options.address, self.options.port, ssl=context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        _log.info("streaming server listening", extra={"url": self.base_url})

    async def stop(self) -> None:
        """Stop listening and end every open session."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    @property
    def base_url(self) -> str:
        host = self.options.address
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(host)
            if address.is_unspecified:
                host = "127.0.0.1" if address.version == 4 else "::1"
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    def url_for(self, request: StreamRequest) -> str:
        """A single-use URL for ``request``."""
        kind = next(name for name, cls in _KINDS.items() if isinstance(request, cls))
        return f"{self.base_url}/{kind}/{self.tokens.issue(request)}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (
            len(self._connections) >= self.options.max_connections
            or self._handshakes >= self.options.max_handshakes
        ):
            await _refuse(reader, writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        activity = Activity()
        watchdog = asyncio.create_task(self._watch_idle(writer, activity))
        try:
            await self._serve(reader, writer, activity)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            _log.exception("streaming connection failed")
        finally:
            watchdog.cancel()
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _watch_idle(self, writer: asyncio.StreamWriter, activity: Activity) -> None:
        """Abort the connection when no byte has moved for ``idle_timeout`` seconds."""
        timeout = self.options.idle_timeout
        while True:
            await asyncio.sleep(max(0.05, min(timeout - activity.idle_for(), 5.0)))
            if activity.idle_for() >= timeout:
                _log.info("closing idle streaming connection")
                writer.transport.abort()
                return

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, activity: Activity
    ) -> None:
        # h11, wsproto and the SPDY and command code (~2 MiB resident) load at the first
        # connection: a node that never execs, attaches or port-forwards never needs them.
        import h11

        from crid.streaming import upgrade

        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        raw = bytearray()
        self._handshakes += 1
        try:
            async with asyncio.timeout(self.options.request_timeout):
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await reader.read(16 * 1024)
                        raw += data
                        conn.receive_data(data)
                        continue
                    break
        except h11.RemoteProtocolError as err:
            await respond(writer, err.error_status_hint, f"bad request: {err}")
            return
        finally:
            self._handshakes -= 1
        if not isinstance(event, h11.Request):
            return
        path = event.target.decode("latin-1").split("?", 1)[0].strip("/").split("/")
        kind = path[0] if len(path) == 2 else ""
        if kind not in _KINDS:
            await respond(writer, 404, "not found")
            return
        try:
            request = self.tokens.consume(path[1], _KINDS[kind])
        except StreamTokenError as err:
            await respond(writer, 404, str(err))
            return
        upgrades = [value.lower() for value in _offers(event.headers, b"upgrade")]
        if "websocket" in upgrades:
            await upgrade.websocket(self.ctx, bytes(raw), reader, writer, request, activity)
        elif "spdy/3.1" in upgrades:
            offered = _offers(event.headers, b"x-stream-protocol-version")
            await upgrade.spdy(
                self.ctx, conn.trailing_data[0], offered, reader, writer, request, activity
            )
        else:
            await respond(writer, 400, "this URL needs an Upgrade to SPDY/3.1 or websocket")


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bounded work for a peer over the limits: one short 503, at most a second of
    draining what it sent (closing on unread data would reset the answer away), close."""
    with contextlib.suppress(ConnectionError, OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await respond(writer, 503, "too many streaming connections")
            writer.write_eof()
            while await reader.read(16 * 1024):
                pass
    writer.transport.abort()


async def respond(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    """A plain-text answer for a request that is not upgraded; the connection then closes."""
    body = message.encode() + b"\n"
    reason = {
        400: "Bad Request",
        403: "Forbidden",
        404: "Not Found",
        431: "Request Header Fields Too Large",
        503: "Service Unavailable",
    }.get(status, "Error")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
