"""A SPDY/3.1 session: streams multiplexed over one :class:`ByteChannel`, with flow control.

Both ends use it (crid's server, and the test client speaking like client-go). Incoming
streams are queued for :meth:`Session.accept`; each :class:`Stream` reads until the
peer's FIN and writes within the peer's flow-control windows.

Flow control follows SPDY/3.1 (per-stream and session windows, 64 KiB to start) once
the peer shows it speaks it, by announcing SETTINGS_INITIAL_WINDOW_SIZE or sending a
WINDOW_UPDATE. Go's spdystream (client-go's and the kubelet's SPDY) does neither and
never grants window, so a peer that stays silent is not held to windows it never
agreed on. Received data is acknowledged with WINDOW_UPDATE once the reader has taken
half a window, so a slow reader throttles a flow-controlling sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from crid.errors import SpdyProtocolError
from crid.streaming.channel import ByteChannel
from crid.streaming.spdy.frames import (
    DataFrame,
    Frame,
    FrameEncoder,
    FrameParser,
    GoAway,
    HeaderList,
    Headers,
    Ping,
    RstStatus,
    RstStream,
    Settings,
    SynReply,
    SynStream,
    WindowUpdate,
)

__all__ = ["DEFAULT_WINDOW", "Session", "Stream", "StreamResetError"]

_log = logging.getLogger(__name__)
DEFAULT_WINDOW = 64 * 1024
MAX_DATA_FRAME = 16 * 1024
SETTINGS_INITIAL_WINDOW_SIZE = 7
MAX_STREAMS = 1000  # open streams per session; more are refused (RST_STREAM REFUSED_STREAM)
_MAX_WINDOW = 0x7FFFFFFF


class StreamResetError(ConnectionError):
    """The stream was reset (RST_STREAM) or its session ended before a write finished."""


class Stream:
    """One SPDY stream: headers, an incoming byte queue, a send window."""

    def __init__(self, session: Session, stream_id: int, headers: HeaderList) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.reply_headers: HeaderList | None = None
        self._replied = asyncio.Event()
        self._chunks: deque[bytes] = deque()
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.buffered = 0
        self.remote_closed = False
        self.local_closed = False
        self.reset_status: int | None = None
        self.send_window = session.initial_send_window
        self._window_open = asyncio.Event()
        self._window_open.set()
        self.unacked = 0

    def header(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (names are lower case in SPDY/3)."""
        for key, value in self.headers:
            if key == name:
                return value.split("\0")[0]
        return default

    async def read(self) -> bytes:
        """The next data; empty once the peer has finished (FIN) or reset the stream."""
        while not self._chunks:
            if self.remote_closed or self.reset_status is not None:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self.buffered -= len(data)
        if self.buffered <= self.session.max_buffered:
            self._drained.set()
        await self.session._consumed(self, len(data))
        return data

    async def write(self, data: bytes) -> None:
        """Send ``data`` as DATA frames, waiting for window when the peer flow-controls."""
        view = memoryview(data)
        while view:
            if self.reset_status is not None or self.session.closed:
                raise StreamResetError(f"stream {self.id} is gone")
            if self.local_closed:
                raise StreamResetError(f"stream {self.id} is closed for writing")
            allowed = await self.session._take_window(self, len(view))
            await self.session._send(DataFrame(stream_id=self.id, data=bytes(view[:allowed])))
            view = view[allowed:]

    async def close(self) -> None:
        """Half-close: tell the peer we will send no more (an empty DATA frame with FIN)."""
        if self.local_closed or self.reset_status is not None or self.session.closed:
            return
        self.local_closed = True
        with contextlib.suppress(ConnectionError):
            await self.session._send(DataFrame(stream_id=self.id, data=b"", fin=True))
        self.session._forget_if_done(self)

    async def reply(self, headers: HeaderList = (), *, fin: bool = False) -> None:
        """Accept the peer's stream (SYN_REPLY)."""
        await self.session._send(SynReply(stream_id=self.id, headers=headers, fin=fin))
        if fin:
            self.local_closed = True

    async def wait_reply(self, timeout: float = 30.0) -> HeaderList:
        """The peer's SYN_REPLY headers to a stream we opened."""
        await asyncio.wait_for(self._replied.wait(), timeout)
        if self.reset_status is not None:
            raise StreamResetError(f"stream {self.id} refused ({self.reset_status})")
        return self.reply_headers or ()

    async def reset(self, status: int = RstStatus.CANCEL) -> None:
        """Abort the stream in both directions."""
        if self.reset_status is None:
            self._mark_reset(status)
            with contextlib.suppress(ConnectionError):
                await self.session._send(RstStream(stream_id=self.id, status=status))

    def _deliver(self, data: bytes, fin: bool) -> None:
        if data:
            self._chunks.append(data)
            self.buffered += len(data)
        if fin:
            self.remote_closed = True
        self._readable.set()

    def _mark_reset(self, status: int) -> None:
        self.reset_status = status
        self._readable.set()
        self._drained.set()
        self._replied.set()
        self._window_open.set()
        self.session._forget(self)


class Session:
    """A SPDY/3.1 session over ``channel``; call :meth:`run` to process incoming frames."""

    def __init__(self, channel: ByteChannel, *, client: bool, window: int = DEFAULT_WINDOW) -> None:
        self.channel = channel
        self.client = client
        self.window = window  # our receive window per stream (announced by SETTINGS)
        self._encoder = FrameEncoder()
        self._parser = FrameParser()
        self._write_lock = asyncio.Lock()
        self._streams: dict[int, Stream] = {}
        self._incoming: asyncio.Queue[Stream | None] = asyncio.Queue()
        self._next_id = 1 if client else 2
        self._last_remote_id = 0
        self.initial_send_window = DEFAULT_WINDOW
        self.session_send_window = DEFAULT_WINDOW
        self._session_window_open = asyncio.Event()
        self._session_window_open.set()
        self.flow_controlled = False
        self._session_unacked = 0
        self.closed = False
        self.max_buffered = 4 * window

    async def start(self) -> None:
        """Announce our receive window (SPDY/3.1 peers size their sends by it)."""
        if self.window != DEFAULT_WINDOW or self.client:
            await self._send(Settings(entries=((0, SETTINGS_INITIAL_WINDOW_SIZE, self.window),)))

    async def run(self) -> None:
        """Read frames until the channel ends or the peer misbehaves; then end every stream."""
        try:
            while True:
                data = await self.channel.receive()
                if not data:
                    return
                for frame in self._parser.feed(data):
                    if isinstance(frame, GoAway):
                        return  # the peer is done with this session
                    await self._dispatch(frame)
        except SpdyProtocolError as err:
            _log.warning("closing SPDY session on a protocol error", extra={"error": str(err)})
            with contextlib.suppress(ConnectionError, OSError):
                await self._send(GoAway(last_good_stream_id=self._last_remote_id, status=1))
        finally:
            await self.close()

    async def close(self) -> None:
        """End the session: every stream sees EOF, :meth:`accept` returns None."""
        if self.closed:
            return
        self.closed = True
        for stream in list(self._streams.values()):
            stream._mark_reset(RstStatus.CANCEL)
        self._session_window_open.set()
        self._incoming.put_nowait(None)
        with contextlib.suppress(ConnectionError, OSError):
            await self.channel.close()

    async def accept(self) -> Stream | None:
        """The next stream the peer opened (None once the session has ended)."""
        stream = await self._incoming.get()
        if stream is None:
            self._incoming.put_nowait(None)
        return stream

    async def open_stream(self, headers: HeaderList, *, fin: bool = False) -> Stream:
        """Open a stream (SYN_STREAM); :meth:`Stream.wait_reply` waits for the answer."""
        stream = Stream(self, self._next_id, headers)
        self._next_id += 2
        self._streams[stream.id] = stream
        await self._send(SynStream(stream_id=stream.id, headers=headers, fin=fin))
        stream.local_closed = fin
        return stream

    async def _send(self, frame: Frame) -> None:
        if self.closed and not isinstance(frame, GoAway):
            raise ConnectionError("SPDY session closed")
        async with self._write_lock:
            await self.channel.send(self._encoder.encode(frame))

    async def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, DataFrame):
            await self._on_data(frame)
        elif isinstance(frame, SynStream):
            await self._on_syn_stream(frame)
        elif isinstance(frame, SynReply | Headers):
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                if isinstance(frame, SynReply):
                    stream.reply_headers = frame.headers
                    stream._replied.set()
                if frame.fin:
                    stream._deliver(b"", True)
                    self._forget_if_done(stream)
        elif isinstance(frame, RstStream):
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                stream._mark_reset(frame.status)
        elif isinstance(frame, Settings):
            self._on_settings(frame)
        elif isinstance(frame, Ping):
            if (frame.ping_id % 2 == 1) != self.client:  # the peer's ping: echo it
                await self._send(frame)
        elif isinstance(frame, WindowUpdate):
            self._on_window_update(frame)

    async def _on_syn_stream(self, frame: SynStream) -> None:
        expected_parity = 0 if self.client else 1
        if frame.stream_id % 2 != expected_parity or frame.stream_id <= self._last_remote_id:
            raise SpdyProtocolError(f"SYN_STREAM with invalid stream id {frame.stream_id}")
        self._last_remote_id = frame.stream_id
        if len(self._streams) >= MAX_STREAMS:
            await self._send(RstStream(stream_id=frame.stream_id, status=RstStatus.REFUSED_STREAM))
            return
        stream = Stream(self, frame.stream_id, frame.headers)
        stream.local_closed = frame.unidirectional
        self._streams[stream.id] = stream
        if frame.fin:
            stream._deliver(b"", True)
        await self._incoming.put(stream)

    async def _on_data(self, frame: DataFrame) -> None:
        stream = self._streams.get(frame.stream_id)
        if stream is None or stream.remote_closed:
            if frame.stream_id > max(self._last_remote_id, self._next_id):
                raise SpdyProtocolError(f"DATA for stream {frame.stream_id} never opened")
            await self._send(RstStream(stream_id=frame.stream_id, status=RstStatus.INVALID_STREAM))
            return
        stream._deliver(frame.data, frame.fin)
        if frame.fin:
            self._forget_if_done(stream)
        # Backpressure against peers that ignore windows: stop reading the connection
        # while this stream holds far more than a window nobody has consumed.
        if stream.buffered > self.max_buffered:
            stream._drained.clear()
            await stream._drained.wait()

    def _on_settings(self, frame: Settings) -> None:
        for _flags, ident, value in frame.entries:
            if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise SpdyProtocolError(f"initial window {value} too large")
                delta = value - self.initial_send_window
                self.initial_send_window = value
                self.flow_controlled = True
                for stream in self._streams.values():
                    stream.send_window += delta
                    if stream.send_window > 0:
                        stream._window_open.set()

    def _on_window_update(self, frame: WindowUpdate) -> None:
        self.flow_controlled = True
        if frame.stream_id == 0:
            self.session_send_window += frame.delta
            if self.session_send_window > _MAX_WINDOW:
                raise SpdyProtocolError("session window overflow")
            self._session_window_open.set()
            return
        stream = self._streams.get(frame.stream_id)
        if stream is not None:
            stream.send_window += frame.delta
            if stream.send_window > _MAX_WINDOW:
                raise SpdyProtocolError(f"stream {stream.id} window overflow")
            stream._window_open.set()

    async def _take_window(self, stream: Stream, wanted: int) -> int:
        """How much of ``wanted`` may go out now (waiting for window when flow-controlled)."""
        wanted = min(wanted, MAX_DATA_FRAME)
        if not self.flow_controlled:
            return wanted
        while True:
            if stream.reset_status is not None or self.closed:
                raise StreamResetError(f"stream {stream.id} is gone")
            if stream.send_window <= 0:
                stream._window_open.clear()
                await stream._window_open.wait()
                continue
            if self.session_send_window <= 0:
                self._session_window_open.clear()
                await self._session_window_open.wait()
                continue
            allowed = min(wanted, stream.send_window, self.session_send_window)
            stream.send_window -= allowed
            self.session_send_window -= allowed
            return allowed

    async def _consumed(self, stream: Stream, size: int) -> None:
        if size == 0 or self.closed:
            return
        stream.unacked += size
        self._session_unacked += size
        with contextlib.suppress(ConnectionError, OSError):
            if stream.unacked >= self.window // 2 and not stream.remote_closed:
                delta, stream.unacked = stream.unacked, 0
                await self._send(WindowUpdate(stream_id=stream.id, delta=delta))
            if self._session_unacked >= DEFAULT_WINDOW // 2:
                delta, self._session_unacked = self._session_unacked, 0
                await self._send(WindowUpdate(stream_id=0, delta=delta))

    def _forget_if_done(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed and not stream._chunks:
            self._forget(stream)

    def _forget(self, stream: Stream) -> None:
        self._streams.pop(stream.id, None)
