"""httpx's transport on plain asyncio streams, without anyio, for the blob download path.

httpcore's default backend under asyncio is anyio, whose socket stream resumes reading
before each wait and pauses it again after, so every 256 KiB received costs an epoll
register and unregister, and it cuts each receive into 64 KiB copies. This backend keeps
the socket readable and buffers what arrives (pausing only past ``_HIGH_WATER`` bytes
not yet read), and hands each received chunk over as it is. It implements httpcore's
documented ``AsyncNetworkBackend`` interface; timeouts and errors map to httpcore's own
exceptions exactly as the anyio backend does, so httpx raises what it always raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import typing
from collections import deque
from collections.abc import Iterable, Iterator

import httpcore
import httpx

__all__ = ["AsyncioTransport"]

#: Bytes received but not yet read at which the socket stops being read.
_HIGH_WATER = 512 << 10
_LOW_WATER = _HIGH_WATER // 4

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


@contextlib.contextmanager
def _mapped(timeout_error: type[Exception], os_error: type[Exception]) -> Iterator[None]:
    try:
        yield
    except TimeoutError as err:
        raise timeout_error(str(err) or "timed out") from err
    except (OSError, EOFError) as err:
        raise os_error(str(err) or type(err).__name__) from err


class _Protocol(asyncio.Protocol):
    """Buffers what the socket delivers; wakes the reader; bounded by flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: BaseException | None = None
        self.paused = False
        self._reader: asyncio.Future[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def eof_received(self) -> bool | None:
        self.eof = True
        self._wake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._writable.set()
        self._wake()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def _wake(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    async def wait_readable(self) -> None:
        """Until data is buffered or the connection ended."""
        while not self.chunks and not self.eof:
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None

    def take(self, max_bytes: int) -> bytes:
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self.chunks.appendleft(rest)
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= _LOW_WATER and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        return chunk

    async def wait_writable(self) -> None:
        await self._writable.wait()


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            if not protocol.chunks and not protocol.eof:
                async with asyncio.timeout(timeout):
                    await protocol.wait_readable()
            if protocol.chunks:
                return protocol.take(max_bytes)
            if protocol.error is not None:
                raise protocol.error
            return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            if self._transport.is_closing():
                raise OSError("the connection is closed")
            self._transport.write(buffer)
            async with asyncio.timeout(timeout):
                await self._protocol.wait_writable()
            if self._protocol.error is not None:
                raise self._protocol.error

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
                try:
                    async with asyncio.timeout(timeout):
                        transport = await loop.start_tls(
                            self._transport,
                            self._protocol,
                            ssl_context,
                            server_hostname=server_hostname,
                        )
                except ssl.SSLError as err:
                    raise httpcore.ConnectError(str(err)) from err
        except BaseException:
            self._transport.close()
            raise
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = transport  # flow control now goes through TLS
        return _Stream(transport, self._protocol)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":
            # a kept-alive connection the server closed, or that sent bytes unasked
            return self._protocol.eof or bool(self._protocol.chunks)
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    async def _connect(
        self,
        opening: typing.Awaitable[tuple[asyncio.BaseTransport, _Protocol]],
        timeout: float | None,
        socket_options: Iterable[_SocketOption] | None,
    ) -> httpcore.AsyncNetworkStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                transport, protocol = await opening
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(typing.cast(asyncio.Transport, transport), protocol)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        opening = loop.create_connection(_Protocol, host, port, local_addr=local)
        return await self._connect(opening, timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        opening = asyncio.get_running_loop().create_unix_connection(_Protocol, path)
        return await self._connect(opening, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """:class:`httpx.AsyncHTTPTransport` (HTTP/1.1, no proxy) whose connections use
    :class:`_Backend`; everything else (pooling, keep-alive, errors) is httpx's."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(),
        )
