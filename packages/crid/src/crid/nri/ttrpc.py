"""ttrpc, the small RPC protocol containerd uses in place of gRPC, over any byte stream.

A message is a 10-byte header (big-endian payload length, big-endian stream id, a type
byte: 1 request, 2 response; a flags byte) and a protobuf payload: a ``Request``
(service, method, encoded argument, timeout) or a ``Response`` (status, encoded
result). A client numbers its calls with odd stream ids, 1, 3, 5...; a server answers
each request on the request's stream id and serves requests concurrently. Payloads are
at most 4 MiB (:data:`MESSAGE_LENGTH_MAX`).

There is no maintained ttrpc package for Python, so crid carries this one; it knows
only unary calls, which is all NRI uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

from crid._nri.ttrpc import ttrpc_pb2
from crid.errors import NRIClosedError, NRIPluginError, NRIProtocolError, NRITimeoutError

__all__ = [
    "MESSAGE_LENGTH_MAX",
    "Client",
    "Frame",
    "Handler",
    "Server",
    "StatusError",
    "Stream",
    "encode_frame",
    "read_frame",
]

_log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IIBB")
#: Largest payload of one ttrpc message.
MESSAGE_LENGTH_MAX = 4 << 20
TYPE_REQUEST = 1
TYPE_RESPONSE = 2

# gRPC status codes ttrpc reuses.
OK = 0
UNKNOWN = 2
DEADLINE_EXCEEDED = 4
UNIMPLEMENTED = 12
INTERNAL = 13

M = TypeVar("M", bound=Message)


class Stream(Protocol):
    """A byte stream: what a ttrpc endpoint reads and writes."""

    async def readexactly(self, size: int) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Frame:
    """One ttrpc message."""

    stream_id: int
    type: int
    flags: int = 0
    payload: bytes = b""


def encode_frame(frame: Frame) -> bytes:
    if len(frame.payload) > MESSAGE_LENGTH_MAX:
        raise NRIProtocolError(
            f"ttrpc message of {len(frame.payload)} bytes exceeds {MESSAGE_LENGTH_MAX}"
        )
    header = _HEADER.pack(len(frame.payload), frame.stream_id, frame.type, frame.flags)
    return header + frame.payload


async def read_frame(stream: Stream) -> Frame:
    """The next message; an oversized one is a protocol error (the stream is lost)."""
    length, stream_id, kind, flags = _HEADER.unpack(await stream.readexactly(_HEADER.size))
    if length > MESSAGE_LENGTH_MAX:
        raise NRIProtocolError(f"ttrpc message of {length} bytes exceeds {MESSAGE_LENGTH_MAX}")
    payload = await stream.readexactly(length) if length else b""
    return Frame(stream_id=stream_id, type=kind, flags=flags, payload=payload)


class StatusError(Exception):
    """Raised by a handler to answer with a specific status code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parse(message_type: type[M], payload: bytes, what: str) -> M:
    try:
        return message_type.FromString(payload)
    except DecodeError as err:
        raise NRIProtocolError(f"malformed ttrpc {what}: {err}") from err


class Client:
    """Calls methods of the server at the other end of ``stream``."""

    def __init__(self, stream: Stream, *, name: str = "ttrpc") -> None:
        self._stream = stream
        self._name = name
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[ttrpc_pb2.Response]] = {}
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._receive(), name=f"{self._name}-client")

    async def _receive(self) -> None:
        try:
            while True:
                frame = await read_frame(self._stream)
                if frame.type != TYPE_RESPONSE:
                    raise NRIProtocolError(f"ttrpc client got a message of type {frame.type}")
                waiter = self._pending.pop(frame.stream_id, None)
                if waiter is None:
                    _log.debug("%s: response for unknown stream %d", self._name, frame.stream_id)
                    continue
                if not waiter.done():
                    try:
                        waiter.set_result(_parse(ttrpc_pb2.Response, frame.payload, "response"))
                    except NRIProtocolError as err:
                        waiter.set_exception(err)
        except asyncio.CancelledError:
            self._fail(NRIClosedError(f"{self._name}: client closed"))
            raise
        except Exception as err:
            self._fail(
                err
                if isinstance(err, NRIClosedError | NRIProtocolError)
                else NRIClosedError(f"{self._name}: {err}")
            )

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(self._error)
        self._pending.clear()

    async def call(
        self,
        service: str,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None = None,
    ) -> M:
        """Call ``service/method``; remote errors raise :class:`NRIPluginError`, a missed
        ``timeout`` :class:`NRITimeoutError`, a lost connection :class:`NRIClosedError`."""
        if self._error is not None:
            raise NRIClosedError(f"{self._name}: {self._error}")
        stream_id = self._next_id
        self._next_id += 2
        envelope = ttrpc_pb2.Request(
            service=service,
            method=method,
            payload=request.SerializeToString(),
            timeout_nano=int(timeout * 1e9) if timeout else 0,
        )
        waiter: asyncio.Future[ttrpc_pb2.Response] = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = waiter
        try:
            frame = Frame(
                stream_id=stream_id, type=TYPE_REQUEST, payload=envelope.SerializeToString()
            )
            await self._stream.write(encode_frame(frame))
            try:
                response = await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                raise NRITimeoutError(
                    f"{self._name}: {method} got no answer within {timeout:g}s"
                ) from None
        finally:
            self._pending.pop(stream_id, None)
            if not waiter.done():
                waiter.cancel()
        if response.HasField("status") and response.status.code != OK:
            raise NRIPluginError(
                response.status.message or f"{method} failed (code {response.status.code})",
                code=response.status.code,
            )
        return _parse(response_type, response.payload, f"{method} result")

    async def close(self) -> None:
        self._fail(NRIClosedError(f"{self._name}: client closed"))
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


#: A method implementation: the encoded argument in, the encoded result out.
Handler = Callable[[bytes], Awaitable[bytes]]


def method(request_type: type[M], implementation: Callable[[M], Awaitable[Message]]) -> Handler:
    """A :data:`Handler` that decodes its argument as ``request_type``."""

    async def handle(payload: bytes) -> bytes:
        result = await implementation(_parse(request_type, payload, "request"))
        return result.SerializeToString()

    return handle


class Server:
    """Serves ``handlers`` (keyed by (service, method)) to the client at the other end."""

    def __init__(
        self,
        stream: Stream,
        handlers: Mapping[tuple[str, str], Handler],
        *,
        name: str = "ttrpc",
    ) -> None:
        self._stream = stream
        self._handlers = handlers
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._last_id = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._serve(), name=f"{self._name}-server")

    async def _serve(self) -> None:
        try:
            while True:
                frame = await read_frame(self._stream)
                if frame.type != TYPE_REQUEST:
                    raise NRIProtocolError(f"ttrpc server got a message of type {frame.type}")
                if frame.stream_id % 2 != 1 or frame.stream_id <= self._last_id:
                    raise NRIProtocolError(
                        f"ttrpc stream id {frame.stream_id} is not a new odd client stream"
                    )
                self._last_id = frame.stream_id
                request = _parse(ttrpc_pb2.Request, frame.payload, "request")
                task = asyncio.create_task(self._answer(frame.stream_id, request))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
        except (NRIClosedError, NRIProtocolError, asyncio.IncompleteReadError) as err:
            _log.debug("%s: server stops: %s", self._name, err)

    async def _answer(self, stream_id: int, request: ttrpc_pb2.Request) -> None:
        handler = self._handlers.get((request.service, request.method))
        response = ttrpc_pb2.Response()
        if handler is None:
            response.status.code = UNIMPLEMENTED
            response.status.message = f"{request.service}/{request.method} is not implemented"
        else:
            try:
                response.payload = await handler(request.payload)
            except StatusError as err:
                response.status.code = err.code
                response.status.message = err.message
            except NRIProtocolError as err:
                response.status.code = INTERNAL
                response.status.message = str(err)
            except Exception as err:
                _log.debug("%s: %s failed", self._name, request.method, exc_info=True)
                response.status.code = UNKNOWN
                response.status.message = str(err) or type(err).__name__
        frame = Frame(stream_id=stream_id, type=TYPE_RESPONSE, payload=response.SerializeToString())
        with contextlib.suppress(NRIClosedError, NRIProtocolError, ConnectionError, OSError):
            async with self._write_lock:
                await self._stream.write(encode_frame(frame))

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._calls) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
