"""The byte pipe a SPDY session runs over: a TCP connection, or a WebSocket tunnel."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

__all__ = ["ByteChannel", "StreamChannel"]


class ByteChannel(Protocol):
    """A bidirectional byte stream."""

    async def receive(self) -> bytes:
        """The next bytes; empty at end of stream."""
        ...

    async def send(self, data: bytes) -> None:
        """Write ``data`` (waits while the peer is slow)."""
        ...

    async def close(self) -> None:
        """Close both directions."""
        ...


class StreamChannel:
    """A :class:`ByteChannel` over asyncio streams (the upgraded HTTP connection)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, prefix: bytes = b""
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._prefix = prefix

    async def receive(self) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        try:
            return await self._reader.read(65536)
        except (ConnectionError, OSError):
            return b""

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
