"""SPDY/3.1 frames: typed records, their wire encoding, and an incremental parser.

Header blocks are zlib streams that share one compression context per direction for
the whole connection (seeded with the SPDY/3 dictionary), so encoding and parsing keep
state: one :class:`FrameEncoder` and one :class:`FrameParser` per connection side.
Anything malformed raises :class:`~crid.errors.SpdyProtocolError`: the caller closes
that connection and nothing else.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from crid.errors import SpdyProtocolError
from crid.streaming.spdy._dictionary import DICTIONARY

__all__ = [
    "FLAG_FIN",
    "FLAG_UNIDIRECTIONAL",
    "MAX_HEADER_BYTES",
    "DataFrame",
    "Frame",
    "FrameEncoder",
    "FrameParser",
    "FrameType",
    "GoAway",
    "HeaderList",
    "Headers",
    "Ping",
    "RstStatus",
    "RstStream",
    "Settings",
    "SynReply",
    "SynStream",
    "WindowUpdate",
]

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
MAX_LENGTH = 0xFFFFFF
MAX_HEADER_BYTES = 1 << 20  # decompressed header block limit (no zlib bombs)
_MAX_ID = 0x7FFFFFFF

HeaderList = tuple[tuple[str, str], ...]


class FrameType(IntEnum):
    """Control frame types of SPDY/3.1."""

    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(IntEnum):
    """RST_STREAM status codes."""

    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


@dataclass(frozen=True, kw_only=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True, kw_only=True)
class SynStream:
    stream_id: int
    headers: HeaderList
    associated_id: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, kw_only=True)
class SynReply:
    stream_id: int
    headers: HeaderList
    fin: bool = False


@dataclass(frozen=True, kw_only=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True, kw_only=True)
class Settings:
    """(flags, id, value) entries; id 7 is SETTINGS_INITIAL_WINDOW_SIZE."""

    entries: tuple[tuple[int, int, int], ...]
    clear: bool = False


@dataclass(frozen=True, kw_only=True)
class Ping:
    ping_id: int


@dataclass(frozen=True, kw_only=True)
class GoAway:
    last_good_stream_id: int
    status: int = 0


@dataclass(frozen=True, kw_only=True)
class Headers:
    stream_id: int
    headers: HeaderList
    fin: bool = False


@dataclass(frozen=True, kw_only=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (
    DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | Headers | WindowUpdate
)


def _control(kind: FrameType, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise SpdyProtocolError(f"{kind.name} payload of {len(payload)} bytes is too long")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def _check_id(value: int, what: str) -> int:
    if not 0 <= value <= _MAX_ID:
        raise SpdyProtocolError(f"{what} {value} out of range")
    return value


class FrameEncoder:
    """Turns frames into bytes; owns the outgoing header compression context."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(
            zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    def _header_block(self, headers: HeaderList) -> bytes:
        parts = [struct.pack(">I", len(headers))]
        for name, value in headers:
            raw_name, raw_value = name.lower().encode(), value.encode()
            parts += [struct.pack(">I", len(raw_name)), raw_name]
            parts += [struct.pack(">I", len(raw_value)), raw_value]
        block = b"".join(parts)
        return self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        """The wire bytes of ``frame``."""
        if isinstance(frame, DataFrame):
            if len(frame.data) > MAX_LENGTH:
                raise SpdyProtocolError("DATA frame too long")
            flags = FLAG_FIN if frame.fin else 0
            head = struct.pack(
                ">II", _check_id(frame.stream_id, "stream id"), (flags << 24) | len(frame.data)
            )
            return head + frame.data
        if isinstance(frame, SynStream):
            flags = (FLAG_FIN if frame.fin else 0) | (
                FLAG_UNIDIRECTIONAL if frame.unidirectional else 0
            )
            payload = struct.pack(
                ">IIBB",
                _check_id(frame.stream_id, "stream id"),
                _check_id(frame.associated_id, "associated id"),
                (frame.priority & 7) << 5,
                0,
            )
            return _control(
                FrameType.SYN_STREAM, flags, payload + self._header_block(frame.headers)
            )
        if isinstance(frame, SynReply | Headers):
            kind = FrameType.SYN_REPLY if isinstance(frame, SynReply) else FrameType.HEADERS
            payload = struct.pack(">I", _check_id(frame.stream_id, "stream id"))
            return _control(
                kind, FLAG_FIN if frame.fin else 0, payload + self._header_block(frame.headers)
            )
        if isinstance(frame, RstStream):
            payload = struct.pack(">II", _check_id(frame.stream_id, "stream id"), frame.status)
            return _control(FrameType.RST_STREAM, 0, payload)
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (flags << 24) | (ident & 0xFFFFFF), value)
                for flags, ident, value in frame.entries
            )
            return _control(FrameType.SETTINGS, 1 if frame.clear else 0, body)
        if isinstance(frame, Ping):
            return _control(FrameType.PING, 0, struct.pack(">I", frame.ping_id & 0xFFFFFFFF))
        if isinstance(frame, GoAway):
            payload = struct.pack(
                ">II", _check_id(frame.last_good_stream_id, "stream id"), frame.status
            )
            return _control(FrameType.GOAWAY, 0, payload)
        payload = struct.pack(
            ">II", _check_id(frame.stream_id, "stream id"), _check_id(frame.delta, "window delta")
        )
        return _control(FrameType.WINDOW_UPDATE, 0, payload)


class FrameParser:
    """Incremental parser: :meth:`feed` bytes, get back the complete frames.

    Unknown control frame types are skipped, as SPDY requires; anything inconsistent
    raises :class:`SpdyProtocolError` and the parser must not be used again.
    """

    def __init__(self, *, max_frame: int = MAX_LENGTH) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._max_frame = max_frame

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return every frame now complete."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer)
            length = second & 0xFFFFFF
            if length > self._max_frame:
                raise SpdyProtocolError(f"frame of {length} bytes exceeds {self._max_frame}")
            if len(self._buffer) < 8 + length:
                break
            flags = second >> 24
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise SpdyProtocolError(f"unsupported SPDY version {version}")
                frame = self._control(kind, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(
                    DataFrame(stream_id=first & _MAX_ID, data=payload, fin=bool(flags & FLAG_FIN))
                )
        return frames

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame | None:
        fin = bool(flags & FLAG_FIN)
        if kind == FrameType.SYN_STREAM:
            self._need(payload, 10, "SYN_STREAM")
            stream_id, associated, prio = struct.unpack_from(">IIB", payload)
            return SynStream(
                stream_id=self._stream_id(stream_id),
                associated_id=associated & _MAX_ID,
                priority=prio >> 5,
                headers=self._headers(payload[10:]),
                fin=fin,
                unidirectional=bool(flags & FLAG_UNIDIRECTIONAL),
            )
        if kind in (FrameType.SYN_REPLY, FrameType.HEADERS):
            self._need(payload, 4, "SYN_REPLY/HEADERS")
            stream_id = self._stream_id(struct.unpack_from(">I", payload)[0])
            headers = self._headers(payload[4:])
            if kind == FrameType.SYN_REPLY:
                return SynReply(stream_id=stream_id, headers=headers, fin=fin)
            return Headers(stream_id=stream_id, headers=headers, fin=fin)
        if kind == FrameType.RST_STREAM:
            self._exact(payload, 8, "RST_STREAM")
            stream_id, status = struct.unpack(">II", payload)
            return RstStream(stream_id=self._stream_id(stream_id), status=status)
        if kind == FrameType.SETTINGS:
            self._need(payload, 4, "SETTINGS")
            (count,) = struct.unpack_from(">I", payload)
            self._exact(payload, 4 + 8 * count, "SETTINGS")
            entries = tuple(
                (word >> 24, word & 0xFFFFFF, value)
                for word, value in struct.iter_unpack(">II", payload[4:])
            )
            return Settings(entries=entries, clear=bool(flags & 1))
        if kind == FrameType.PING:
            self._exact(payload, 4, "PING")
            return Ping(ping_id=struct.unpack(">I", payload)[0])
        if kind == FrameType.GOAWAY:
            self._exact(payload, 8, "GOAWAY")
            last, status = struct.unpack(">II", payload)
            return GoAway(last_good_stream_id=last & _MAX_ID, status=status)
        if kind == FrameType.WINDOW_UPDATE:
            self._exact(payload, 8, "WINDOW_UPDATE")
            stream_id, delta = struct.unpack(">II", payload)
            delta &= _MAX_ID
            if delta == 0:
                raise SpdyProtocolError("WINDOW_UPDATE with a zero delta")
            return WindowUpdate(stream_id=stream_id & _MAX_ID, delta=delta)
        return None  # unknown control frames are ignored (SPDY/3 2.2.1)

    @staticmethod
    def _need(payload: bytes, size: int, what: str) -> None:
        if len(payload) < size:
            raise SpdyProtocolError(f"{what} frame too short ({len(payload)} bytes)")

    @staticmethod
    def _exact(payload: bytes, size: int, what: str) -> None:
        if len(payload) != size:
            raise SpdyProtocolError(f"{what} frame has {len(payload)} bytes, expected {size}")

    @staticmethod
    def _stream_id(raw: int) -> int:
        stream_id = raw & _MAX_ID
        if stream_id == 0:
            raise SpdyProtocolError("stream id 0 in a stream frame")
        return stream_id

    def _headers(self, block: bytes) -> HeaderList:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BYTES)
        except zlib.error as err:
            raise SpdyProtocolError(f"bad header compression: {err}") from err
        if self._inflate.unconsumed_tail:
            raise SpdyProtocolError(f"header block larger than {MAX_HEADER_BYTES} bytes")
        return _decode_block(raw)


def _decode_block(raw: bytes) -> HeaderList:
    try:
        (count,) = struct.unpack_from(">I", raw)
        offset = 4
        pairs = []
        for _ in range(count):
            pair = []
            for _part in range(2):
                (size,) = struct.unpack_from(">I", raw, offset)
                offset += 4
                if offset + size > len(raw):
                    raise SpdyProtocolError("header block truncated")
                pair.append(raw[offset : offset + size].decode())
                offset += size
            if not pair[0]:
                raise SpdyProtocolError("empty header name")
            pairs.append((pair[0].lower(), pair[1]))
    except (struct.error, UnicodeDecodeError) as err:
        raise SpdyProtocolError(f"malformed header block: {err}") from err
    if offset != len(raw):
        raise SpdyProtocolError("trailing bytes after the header block")
    return tuple(pairs)
