"""The byte pipe a SPDY session runs over: a TCP connection, or a WebSocket tunnel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

__all__ = ["Activity", "ByteChannel", "StreamChannel"]


class Activity:
    """When a connection last moved a byte (the idle timeout watches it)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last


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
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        prefix: bytes = b"",
        activity: Activity | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._prefix = prefix
        self.activity = activity or Activity()

    async def receive(self) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        try:
            data = await self._reader.read(65536)
        except (ConnectionError, OSError):
            return b""
        self.activity.touch()
        return data

    async def send(self, data: bytes) -> None:
        self.activity.touch()
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
