"""Exec: a new process in a running container through the OCI runtime (``runc exec``).

The process spec is the container's own (``config.json``'s ``process``: user, env,
capabilities, cwd) with the requested command. Without a TTY the runtime hands our
pipes straight to the process. With a TTY, runc is given a pseudo-terminal of crid's
as its stdio: it makes the container's terminal (through its console socket) and copies
between the two, resizing the container's terminal whenever it gets SIGWINCH, so a
resize is: set our terminal's size, signal runc. The exit code is runc's; when the
client goes away the process (found through ``--pid-file``) is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

from crid.context import Context
from crid.oci._exec import environment
from crid.streaming._fdio import read_fd, write_fd
from crid.streaming.prepare import running_container
from crid.streaming.remotecommand import CommandIO, Reader, TerminalSize, Writer, resize_events
from crid.streaming.requests import ExecRequest

__all__ = ["run_exec"]

_log = logging.getLogger(__name__)
INITIAL_SIZE_WAIT = 0.5


def _process_spec(bundle: Path, command: tuple[str, ...], tty: bool) -> dict[str, Any]:
    config = json.loads((bundle / "config.json").read_text())
    process: dict[str, Any] = dict(config.get("process") or {})
    process["args"] = list(command)
    process["terminal"] = tty
    process.pop("consoleSize", None)
    return process


def set_size(fd: int, size: TerminalSize) -> None:
    """Give the terminal at ``fd`` this window size."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


async def _copy_out(read: Callable[[], Awaitable[bytes]], writer: Writer | None) -> None:
    while data := await read():
        if writer is not None:
            with contextlib.suppress(ConnectionError):
                await writer.write(data)


async def _copy_in(
    reader: Reader, write: Callable[[bytes], Awaitable[None]], close: Callable[[], None]
) -> None:
    try:
        while data := await reader.read():
            await write(data)
    except (ConnectionError, OSError):
        pass
    finally:
        close()


async def run_exec(ctx: Context, request: ExecRequest, io: CommandIO) -> int:
    """Run the command to its end and return its exit code."""
    container = running_container(ctx, request.container_id)
    handler = ctx.handler(container.runtime_handler)
    bundle = Path(container.bundle or ctx.layout.bundle(container.id))
    name = f"exec-{secrets.token_hex(6)}"
    spec_path, pid_path = bundle / f"{name}.json", bundle / f"{name}.pid"
    spec = await asyncio.to_thread(_process_spec, bundle, request.command, io.tty)
    await asyncio.to_thread(spec_path.write_text, json.dumps(spec))
    argv = [
        str(handler.runtime.binary),
        *handler.runtime.global_args(),
        "exec",
        "--process",
        str(spec_path),
        "--pid-file",
        str(pid_path),
        container.id,
    ]
    try:
        if io.tty:
            return await _run_tty(argv, io, pid_path)
        return await _run_pipes(argv, io, pid_path)
    finally:
        for path in (spec_path, pid_path):
            path.unlink(missing_ok=True)


async def _finish(proc: asyncio.subprocess.Process, pid_path: Path) -> None:
    """Kill the exec'd process if it still runs, then reap runc.

    runc writes the pid file once the process exists; until then (a client gone during
    start-up) keep looking for it, so the process is never left behind.
    """
    for _ in range(20):
        if proc.returncode is not None:
            return
        with contextlib.suppress(OSError, ValueError):
            pid = int((await asyncio.to_thread(pid_path.read_text)).strip())
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 0.25)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


async def _run_pipes(argv: list[str], io: CommandIO, pid_path: Path) -> int:
    devnull = asyncio.subprocess.DEVNULL
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=pipe if io.stdin is not None else devnull,
        stdout=pipe if io.stdout is not None else devnull,
        stderr=pipe if io.stderr is not None else devnull,
        env=environment(),
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        for pipe_out, writer in ((proc.stdout, io.stdout), (proc.stderr, io.stderr)):
            if pipe_out is not None:
                tasks.append(asyncio.create_task(_copy_out(partial(pipe_out.read, 65536), writer)))
        stdin_task = None
        if io.stdin is not None and proc.stdin is not None:
            stdin = proc.stdin

            async def write(data: bytes) -> None:
                stdin.write(data)
                await stdin.drain()

            stdin_task = asyncio.create_task(_copy_in(io.stdin, write, stdin.close))
        await asyncio.gather(*tasks)
        code = await proc.wait()
        if stdin_task is not None:
            stdin_task.cancel()
        return code
    finally:
        for task in tasks:
            task.cancel()
        await _finish(proc, pid_path)


async def _run_tty(argv: list[str], io: CommandIO, pid_path: Path) -> int:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    set_size(master, TerminalSize(width=80, height=24))
    sizes = resize_events(io.resize) if io.resize is not None else None
    if sizes is not None:
        # Clients send the terminal's size right after opening their streams: wait briefly
        # for it, so that the process starts with the right size instead of 80x24.
        with contextlib.suppress(TimeoutError, StopAsyncIteration):
            set_size(master, await asyncio.wait_for(anext(sizes), INITIAL_SIZE_WAIT))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment(),
            start_new_session=True,
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)
    side: list[asyncio.Task[None]] = []
    try:
        if sizes is not None:
            side.append(asyncio.create_task(_apply_resizes(sizes, master, proc.pid)))
        if io.stdin is not None:
            side.append(
                asyncio.create_task(_copy_in(io.stdin, lambda d: write_fd(master, d), lambda: None))
            )
        await _copy_out(lambda: read_fd(master), io.stdout)
        return await proc.wait()
    finally:
        for task in side:
            task.cancel()
        await _finish(proc, pid_path)
        os.close(master)


async def _apply_resizes(sizes: AsyncIterator[TerminalSize], master: int, runtime_pid: int) -> None:
    async for size in sizes:
        set_size(master, size)
        # runc copies the size to the container's terminal on SIGWINCH; a signal that
        # lands while it is still setting that terminal up is lost, so it is repeated.
        for delay in (0.0, 0.05, 0.25):
            await asyncio.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.kill(runtime_pid, signal.SIGWINCH)
