"""Several byte streams over one socket, framed as containerd/nri's multiplexer frames them.

Each frame is an 8-byte header (big-endian connection id, big-endian payload length)
followed by the payload. NRI opens two logical connections on one unix socket: id 1
carries the ``Plugin`` service (the runtime calls the plugin) and id 2 the ``Runtime``
service (the plugin calls the runtime). Opening a connection sends nothing; frames for
an id nobody opened are dropped, as the Go implementation drops them.

Frames are written at most :data:`CHUNK` bytes long: Go peers read them through a
4 KiB ``bufio.Reader`` whose reads fail on a larger frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct

from crid.errors import NRIClosedError, NRIProtocolError

__all__ = [
    "CHUNK",
    "MAX_FRAME",
    "PLUGIN_SERVICE_CONN",
    "RUNTIME_SERVICE_CONN",
    "Multiplexer",
    "MuxConnection",
]

_log = logging.getLogger(__name__)

_HEADER = struct.Struct(">II")
#: The logical connection carrying the Plugin service.
PLUGIN_SERVICE_CONN = 1
#: The logical connection carrying the Runtime service.
RUNTIME_SERVICE_CONN = 2
#: Largest payload written in one frame.
CHUNK = 4096
#: Largest payload accepted in one frame: one whole ttrpc message with its header.
MAX_FRAME = 10 + (4 << 20)
#: Bytes a logical connection may hold unread before the peer is cut off.
MAX_BUFFERED = 4 * MAX_FRAME


class MuxConnection:
    """One logical connection: a byte stream read with :meth:`readexactly`."""

    def __init__(self, mux: Multiplexer, conn_id: int) -> None:
        self.conn_id = conn_id
        self._mux = mux
        self._buffer = bytearray()
        self._readable = asyncio.Event()
        self._error: BaseException | None = None

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFERED:
            raise NRIProtocolError(
                f"multiplexed connection {self.conn_id}: more than {MAX_BUFFERED} bytes unread"
            )
        self._readable.set()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._readable.set()

    async def readexactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes; raises :class:`NRIClosedError` once the trunk is gone."""
        while len(self._buffer) < size:
            if self._error is not None:
                raise self._error
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def write(self, data: bytes) -> None:
        await self._mux.send(self.conn_id, data)

    @property
    def closed(self) -> bool:
        return self._error is not None


class Multiplexer:
    """Reads the trunk in a task and hands each frame's payload to its connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._conns: dict[int, MuxConnection] = {}
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.error: BaseException | None = None

    def open(self, conn_id: int) -> MuxConnection:
        """The logical connection ``conn_id`` (the same object on every call)."""
        if conn_id == 0:
            raise ValueError("multiplexer connection id 0 is reserved")
        conn = self._conns.get(conn_id)
        if conn is None:
            conn = self._conns[conn_id] = MuxConnection(self, conn_id)
            if self.error is not None:
                conn._fail(self.error)
        return conn

    def start(self) -> None:
        """Start reading the trunk (after opening the connections that will be used)."""
        if self._task is None:
            self._task = asyncio.create_task(self._read_loop(), name="nri-mux-reader")

    async def _read_loop(self) -> None:
        error: BaseException
        try:
            while True:
                header = await self._reader.readexactly(_HEADER.size)
                conn_id, length = _HEADER.unpack(header)
                if length > MAX_FRAME:
                    raise NRIProtocolError(
                        f"multiplexer frame of {length} bytes exceeds the {MAX_FRAME} limit"
                    )
                payload = await self._reader.readexactly(length) if length else b""
                conn = self._conns.get(conn_id)
                if conn is not None and payload:
                    conn._feed(payload)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as err:
            error = NRIClosedError(f"NRI connection closed: {err or type(err).__name__}")
        except NRIProtocolError as err:
            _log.warning("NRI peer broke the framing: %s", err)
            error = err
        except asyncio.CancelledError:
            error = NRIClosedError("NRI connection closed")
            self._fail(error)
            raise
        self._fail(error)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        for conn in self._conns.values():
            conn._fail(self.error)
        self._closed.set()
        with contextlib.suppress(Exception):
            self._writer.close()

    async def send(self, conn_id: int, data: bytes) -> None:
        """Write ``data`` to connection ``conn_id`` (in frames of at most CHUNK bytes)."""
        if self.error is not None:
            raise NRIClosedError(f"NRI connection closed: {self.error}")
        async with self._write_lock:
            try:
                for start in range(0, len(data), CHUNK):
                    chunk = data[start : start + CHUNK]
                    self._writer.write(_HEADER.pack(conn_id, len(chunk)) + chunk)
                await self._writer.drain()
            except (ConnectionError, OSError) as err:
                self._fail(NRIClosedError(f"NRI connection closed: {err}"))
                raise NRIClosedError(f"NRI connection closed: {err}") from err

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self) -> None:
        """Close the trunk and every logical connection."""
        self._fail(NRIClosedError("NRI connection closed"))
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
