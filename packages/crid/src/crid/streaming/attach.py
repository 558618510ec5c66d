"""Attach: the container's own stdio, held by conmon, through its attach socket.

conmon listens on ``<attach dir>/<id>/attach`` (SOCK_SEQPACKET): each packet it sends
starts with the pipe it came from (2 stdout, 3 stderr: conmon 2.1.6, measured), and
what a client writes goes to the container's stdin (only if conmon was started with
``--stdin``). A terminal resize is a line ``1 <height> <width>`` (message type 1:
window size) written to the bundle's ``ctl`` fifo (conmon 2.1.6 also has a ``winsz``
fifo taking ``<height> <width>``; both checked by experiment, ``ctl`` is what CRI-O
has always used). Leaving (the client's end of stdin, or the connection closing)
only closes our socket: the container keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from pathlib import Path

from crid.context import Context
from crid.errors import StreamingError
from crid.streaming.prepare import running_container
from crid.streaming.remotecommand import CommandIO, Reader, resize_events
from crid.streaming.requests import AttachRequest

__all__ = ["run_attach"]

_PACKET = 8192 + 1
_STDOUT, _STDERR = 2, 3  # conmon numbers its pipes stdin 1, stdout 2, stderr 3


def _connect(path: Path) -> socket.socket:
    """Connect to the attach socket (through /proc/self/fd: its path may pass 108 bytes)."""
    directory = os.open(path.parent, os.O_PATH)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(f"/proc/self/fd/{directory}/{path.name}")
    except OSError as err:
        sock.close()
        raise StreamingError(f"cannot attach to {path}: {err}") from err
    finally:
        os.close(directory)
    sock.setblocking(False)
    return sock


def _write_ctl(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def _resize(reader: Reader, ctl: Path) -> None:
    async for size in resize_events(reader):
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_write_ctl, ctl, f"1 {size.height} {size.width}\n")


async def _stdin(reader: Reader, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read():
            for start in range(0, len(data), _PACKET - 1):
                await loop.sock_sendall(sock, data[start : start + _PACKET - 1])
        sock.shutdown(socket.SHUT_WR)


async def run_attach(ctx: Context, request: AttachRequest, io: CommandIO) -> int:
    """Relay the container's output (and stdin) until it exits or the client leaves."""
    container = running_container(ctx, request.container_id)
    sock = _connect(ctx.layout.attach / container.id / "attach")
    loop = asyncio.get_running_loop()
    side: list[asyncio.Task[None]] = []
    try:
        if io.stdin is not None:
            side.append(asyncio.create_task(_stdin(io.stdin, sock)))
        if io.resize is not None:
            bundle = Path(container.bundle or ctx.layout.bundle(container.id))
            side.append(asyncio.create_task(_resize(io.resize, bundle / "ctl")))
        while True:
            try:
                packet = await loop.sock_recv(sock, _PACKET)
            except OSError as err:
                if err.errno in (errno.ECONNRESET, errno.EPIPE):
                    break
                raise
            if not packet:
                break
            target = io.stderr if packet[0] == _STDERR and io.stderr is not None else io.stdout
            if target is not None and len(packet) > 1:
                with contextlib.suppress(ConnectionError):
                    await target.write(packet[1:])
        return 0
    finally:
        for task in side:
            task.cancel()
        sock.close()
