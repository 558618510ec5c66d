"""Serving a remote command (exec, attach) over SPDY streams or WebSocket channels.

The transport only maps streams: SPDY streams named by their ``streamtype`` header,
WebSocket channels numbered 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize (the
``base64.`` variants carry them as text). The command runs until it ends or the client
goes away (then it is cancelled, which kills an exec'd process); its end is reported on
the error stream, then the connection closes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable

from crid.errors import CridError
from crid.streaming.remotecommand import (
    CommandIO,
    exit_status,
    failure_status,
    structured_status,
)
from crid.streaming.spdy import Session, Stream
from crid.streaming.websocket import WebSocket

__all__ = ["Command", "serve_spdy_command", "serve_websocket_command"]

_log = logging.getLogger(__name__)
STREAM_CREATION_TIMEOUT = 30.0
Command = Callable[[CommandIO], Awaitable[int | None]]


def _expected_streams(
    *, stdin: bool, stdout: bool, stderr: bool, tty: bool, protocol: str
) -> set[str]:
    expected = {"error"}
    if stdin:
        expected.add("stdin")
    if stdout:
        expected.add("stdout")
    if stderr and not tty:
        expected.add("stderr")
    if tty and protocol != "channel.k8s.io" and not protocol.startswith("v2."):
        expected.add("resize")
    return expected


async def _status(command: Command, io: CommandIO, structured: bool) -> bytes:
    try:
        code = await command(io)
    except CridError as err:
        return failure_status(str(err) or type(err).__name__, structured=structured)
    return exit_status(code or 0, structured=structured)


async def serve_spdy_command(
    session: Session,
    protocol: str,
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    command: Command,
) -> None:
    """Collect the client's streams, run ``command``, report its end, close the session."""
    reader = asyncio.create_task(session.run())
    try:
        streams: dict[str, Stream] = {}
        expected = _expected_streams(
            stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, protocol=protocol
        )
        async with asyncio.timeout(STREAM_CREATION_TIMEOUT):
            while not expected <= streams.keys():
                stream = await session.accept()
                if stream is None:
                    return
                await stream.reply()
                streams[stream.header("streamtype")] = stream
        io = CommandIO(
            stdin=streams.get("stdin"),
            stdout=streams.get("stdout"),
            stderr=streams.get("stderr"),
            resize=streams.get("resize"),
            tty=tty,
        )
        running = asyncio.create_task(_status(command, io, structured_status(protocol)))
        await asyncio.wait({reader, running}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():  # the client went away: stop the command
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            return
        status = running.result()
        with contextlib.suppress(ConnectionError):
            for name in ("stdout", "stderr"):
                if name in streams:
                    await streams[name].close()
            if status:
                await streams["error"].write(status)
            await streams["error"].close()
    except TimeoutError:
        _log.warning("client did not open its streams in time", extra={"protocol": protocol})
    finally:
        await session.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


class _ChannelWriter:
    def __init__(self, websocket: WebSocket, channel: int, *, b64: bool, v5: bool) -> None:
        self._ws = websocket
        self._channel = channel
        self._b64 = b64
        self._v5 = v5

    async def write(self, data: bytes) -> None:
        if self._b64:
            await self._ws.send(str(self._channel) + base64.b64encode(data).decode())
        else:
            await self._ws.send(bytes([self._channel]) + data)

    async def close(self) -> None:
        if self._v5:
            await self._ws.send(bytes([255, self._channel]))


class _ChannelReader:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = False

    def feed(self, data: bytes) -> None:
        if not self.closed:
            self.queue.put_nowait(data)

    def end(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(b"")

    async def read(self) -> bytes:
        data = await self.queue.get()
        if not data:
            self.queue.put_nowait(b"")
        return data


async def _dispatch_messages(
    websocket: WebSocket, readers: dict[int, _ChannelReader], *, b64: bool, v5: bool
) -> None:
    """Route incoming messages to the stdin and resize channels until the client closes."""
    try:
        while (message := await websocket.receive()) is not None:
            if isinstance(message, str):
                if not b64 or not message:
                    continue
                channel, payload = int(message[0]), base64.b64decode(message[1:])
            else:
                if not message:
                    continue
                channel, payload = message[0], message[1:]
            if v5 and channel == 255 and payload:
                if payload[0] in readers:
                    readers[payload[0]].end()
            elif channel in readers and payload:
                readers[channel].feed(payload)
    except ValueError:
        _log.warning("malformed websocket message; closing")
    finally:
        for reader in readers.values():
            reader.end()


async def serve_websocket_command(
    websocket: WebSocket,
    protocol: str,
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    command: Command,
) -> None:
    """Run ``command`` over WebSocket channels, report its end on channel 3, close."""
    b64 = ".base64." in f".{protocol}"
    v5 = protocol.startswith("v5.")
    readers: dict[int, _ChannelReader] = {}
    if stdin:
        readers[0] = _ChannelReader()
    if tty:
        readers[4] = _ChannelReader()
    io = CommandIO(
        stdin=readers.get(0),
        stdout=_ChannelWriter(websocket, 1, b64=b64, v5=v5) if stdout else None,
        stderr=_ChannelWriter(websocket, 2, b64=b64, v5=v5) if stderr and not tty else None,
        resize=readers.get(4),
        tty=tty,
    )
    incoming = asyncio.create_task(_dispatch_messages(websocket, readers, b64=b64, v5=v5))
    running = asyncio.create_task(_status(command, io, structured_status(protocol)))
    try:
        await asyncio.wait({incoming, running}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            return
        status = running.result()
        with contextlib.suppress(ConnectionError):
            for writer in (io.stdout, io.stderr):
                if writer is not None:
                    await writer.close()
            if status:
                await _ChannelWriter(websocket, 3, b64=b64, v5=v5).write(status)
    finally:
        await websocket.close()
        incoming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await incoming
