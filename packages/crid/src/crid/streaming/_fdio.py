"""Non-blocking reads and writes of raw file descriptors (pty masters) on the event loop."""

from __future__ import annotations

import asyncio
import os

__all__ = ["read_fd", "write_fd"]


async def _ready(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await done
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def read_fd(fd: int, size: int = 65536) -> bytes:
    """Up to ``size`` bytes; empty at end of file (EIO on a pty whose slave side closed)."""
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            await _ready(fd, write=False)
        except OSError:
            return b""


async def write_fd(fd: int, data: bytes) -> None:
    """All of ``data``."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await _ready(fd, write=True)
            continue
        view = view[written:]
