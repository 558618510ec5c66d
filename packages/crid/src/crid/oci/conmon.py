"""conmon, the per-container monitor: it runs the runtime's ``create``, then holds the
container's stdio, writes its CRI log, and records its exit code in an exit directory.

crid talks to conmon as CRI-O does, through two inherited pipes: conmon blocks on
``_OCI_STARTPIPE`` until crid writes a byte (so crid can first move it into a cgroup),
and reports ``{"data": <pid>}`` (or ``{"data": -1, "message": ...}``) on
``_OCI_SYNCPIPE`` once the runtime's create has finished. conmon daemonizes, so the
container keeps running if crid restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from crid.errors import ConmonError, RuntimeTimeoutError
from crid.metrics.instruments import observe_runtime_call
from crid.oci._exec import environment, find_binary, version_line
from crid.oci.runtime import OCIRuntime, runtime_message

__all__ = [
    "BeforeStart",
    "Conmon",
    "ConmonOptions",
    "CreatedContainer",
    "conmon_binary",
    "conmon_version",
    "remove_attach_link",
]

_log = logging.getLogger(__name__)


def conmon_binary(configured: str) -> Path | None:
    """The conmon binary (``configured`` or from PATH), or None when it is not installed."""
    return find_binary(configured, "conmon")


async def conmon_version(binary: Path, *, timeout: float = 5.0) -> str:
    """The first line of ``--version`` (e.g. ``conmon version 2.1.6``)."""
    return await version_line(binary, timeout=timeout)


def remove_attach_link(socket_dir: Path, container_id: str) -> None:
    """Remove the link conmon makes in ``--socket-dir-path`` to a container's bundle (it
    reaches the attach socket by a path short enough for a unix socket). Absent is fine."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        (socket_dir / container_id).unlink()


@dataclass(frozen=True, kw_only=True)
class ConmonOptions:
    """Everything conmon needs to create one container from a prepared bundle."""

    container_id: str
    name: str
    bundle: Path
    log_path: Path
    exit_dir: Path
    socket_dir: Path
    terminal: bool = False
    stdin: bool = False
    stdin_once: bool = False
    log_size_max: int = -1
    systemd_cgroup: bool = False

    @property
    def conmon_pidfile(self) -> Path:
        return self.bundle / "conmon.pid"

    @property
    def container_pidfile(self) -> Path:
        return self.bundle / "container.pid"

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.container_id


@dataclass(frozen=True, kw_only=True)
class CreatedContainer:
    """A container in the runtime's ``created`` state, monitored by conmon."""

    pid: int
    conmon_pid: int


#: ``Conmon.create``'s hook: called with the function that sends conmon its start byte.
BeforeStart = Callable[[Callable[[], None]], Awaitable[None]]


class _StartPipe:
    """The writing end of conmon's start pipe: the start byte is sent at most once, from
    the event loop or a worker thread, and never after the pipe was sealed."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.sent = False
        self._sealed = False

    def send(self) -> None:
        """Send the start byte and close the pipe (nothing if sent or sealed already)."""
        with self._lock:
            if self.sent or self._sealed:
                return
            self.sent = True
            with contextlib.suppress(BrokenPipeError):  # conmon died: its reply says why
                os.write(self._fd, b"\0")
            os.close(self._fd)
            self._fd = -1

    def seal(self) -> bool:
        """No start byte from now on; True if it was sent already."""
        with self._lock:
            self._sealed = True
            return self.sent

    def close(self) -> None:
        with self._lock:
            self._sealed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class Conmon:
    """Creates containers under conmon with one OCI runtime."""

    def __init__(
        self,
        *,
        binary: Path,
        runtime: OCIRuntime,
        log_level: str = "info",
        create_timeout: float = 60.0,
    ) -> None:
        self.binary = binary
        self.runtime = runtime
        self.log_level = log_level
        self.create_timeout = create_timeout

    def argv(self, options: ConmonOptions) -> list[str]:
        """conmon's command line for ``options``."""
        argv = [
            str(self.binary),
            "--api-version",
            "1",
            "--cid",
            options.container_id,
            "--cuuid",
            options.container_id,
            "--name",
            options.name,
            "--runtime",
            str(self.runtime.binary),
            "--bundle",
            str(options.bundle),
            "--container-pidfile",
            str(options.container_pidfile),
            "--conmon-pidfile",
            str(options.conmon_pidfile),
            "--log-path",
            f"k8s-file:{options.log_path}",
            "--exit-dir",
            str(options.exit_dir),
            "--socket-dir-path",
            str(options.socket_dir),
            "--log-level",
            self.log_level,
            "--syslog",
        ]
        for arg in self.runtime.global_args():
            argv += ["--runtime-arg", arg]
        if options.log_size_max > 0:
            argv += ["--log-size-max", str(options.log_size_max)]
        if options.terminal:
            argv.append("--terminal")
        if options.stdin:
            argv.append("--stdin")
            if not options.stdin_once:
                argv.append("--leave-stdin-open")
        if options.systemd_cgroup:
            argv.append("--systemd-cgroup")
        return argv

    async def create(
        self,
        options: ConmonOptions,
        *,
        timeout: float | None = None,
        before_start: BeforeStart | None = None,
    ) -> CreatedContainer:
        """Have conmon create the container; returns once the runtime's create is done.

        On failure, timeout (``create_timeout`` unless given) or cancellation nothing is
        left running: conmon is killed, and the runtime's half-created container deleted.

        ``before_start`` is awaited once conmon is running and waiting for its start
        byte, before the runtime is run: the caller writes the bundle meanwhile, so
        conmon's own start-up overlaps it. It gets the function that sends the start
        byte (thread-safe, once): a worker thread that has just written the bundle may
        call it at once instead of waiting for the event loop; otherwise the byte is
        sent when the hook returns. If the hook fails or is cancelled before the byte
        was sent, conmon is killed before it has run anything; after, the runtime's
        container is abandoned as on any failure. The timeout applies from the hook's
        end on.
        """
        started = time.perf_counter()
        ok = False
        limit = self.create_timeout if timeout is None else timeout
        hook_failed = False

        async def hook(start: Callable[[], None]) -> None:
            nonlocal hook_failed
            if before_start is None:
                return
            try:
                await before_start(start)
            except BaseException:
                hook_failed = True
                raise

        try:
            created = await self._create(options, limit, hook)
            ok = True
            return created
        except TimeoutError as err:
            if hook_failed:
                raise  # the caller's own error, not the runtime's
            raise RuntimeTimeoutError(
                f"{self.runtime.name} create {options.container_id} (under conmon): timed out"
                f" after {limit:g}s (conmon and the runtime were killed)"
            ) from err
        finally:
            observe_runtime_call(self.runtime.name, "create", time.perf_counter() - started, ok=ok)

    async def _create(
        self,
        options: ConmonOptions,
        timeout: float,
        before_start: BeforeStart,
    ) -> CreatedContainer:
        for directory in (options.exit_dir, options.socket_dir, options.log_path.parent):
            directory.mkdir(parents=True, exist_ok=True)
        options.exit_file.unlink(missing_ok=True)
        # conmon's stderr (read when it exits without a report) is a memory file, not
        # one in the bundle: creating a file costs more than the rest of the set-up on
        # some file systems. While conmon runs, /proc/<conmon pid>/fd/2 shows it.
        stderr = os.memfd_create("conmon-stderr", os.MFD_CLOEXEC)
        try:
            return await self._run(options, timeout, before_start, stderr)
        finally:
            os.close(stderr)

    async def _run(
        self, options: ConmonOptions, timeout: float, before_start: BeforeStart, stderr: int
    ) -> CreatedContainer:
        sync_read, sync_write = os.pipe()
        start_read, start_write = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(options),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                cwd=options.bundle,
                # conmon reads the pipes' fd numbers from its environment, so the ends
                # are inherited as they are: no fd shuffling in the child.
                env=environment(
                    {"_OCI_SYNCPIPE": str(sync_write), "_OCI_STARTPIPE": str(start_read)}
                ),
                pass_fds=(sync_write, start_read),
                start_new_session=True,
            )
        except BaseException:
            for fd in (sync_read, sync_write, start_read, start_write):
                os.close(fd)
            raise
        os.close(sync_write)
        os.close(start_read)
        start = _StartPipe(start_write)
        try:
            await before_start(start.send)
        except BaseException:
            try:
                if start.seal():
                    await self._abandon(options, proc)  # conmon had its byte: it ran
                else:
                    # conmon still waits for its start byte: it has run nothing yet.
                    # Killed before its start pipe closes, so it never reads an EOF and
                    # goes on.
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.shield(proc.wait())
            finally:
                start.close()
                os.close(sync_read)
            raise
        try:
            start.send()
            async with asyncio.timeout(timeout):
                message = await _read_line(sync_read)
                if proc.returncode is None:  # conmon's parent exits once it has forked
                    await proc.wait()
            return self._created(options, message, proc.returncode, stderr)
        except BaseException:
            await self._abandon(options, proc)
            raise
        finally:
            start.close()

    def _created(
        self, options: ConmonOptions, message: bytes, returncode: int | None, stderr: int
    ) -> CreatedContainer:
        if not message:
            detail = os.pread(stderr, 65536, 0).decode(errors="replace").strip()
            raise ConmonError(
                f"conmon for {options.container_id} exited ({returncode}) without reporting"
                f" a pid: {detail or 'no output'}"
            )
        try:
            reply = json.loads(message)
            pid = int(reply["data"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConmonError(f"conmon sent an unreadable message: {message!r}") from err
        if pid <= 0:
            raise ConmonError(
                f"creating container {options.container_id} failed: "
                f"{runtime_message(reply.get('message') or '') or 'no message from the runtime'}"
            )
        conmon_pid = int(options.conmon_pidfile.read_text().strip())
        return CreatedContainer(pid=pid, conmon_pid=conmon_pid)

    async def _abandon(self, options: ConmonOptions, proc: asyncio.subprocess.Process) -> None:
        """Undo a creation that failed or was cancelled halfway: leave nothing running.

        conmon forks a daemon (in its own session) once it has the start byte, and that
        daemon runs the runtime's create. So: let conmon's parent finish writing the
        daemon's pidfile (it exits within milliseconds), kill whatever still carries the
        container's id (the daemon, a runtime create), then delete the runtime's
        container, repeating until nothing mentions the id any more.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 1.0)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(options.conmon_pidfile.read_text().strip()), signal.SIGKILL)
        deadline = asyncio.get_running_loop().time() + 5.0
        while True:
            survivors = await asyncio.to_thread(_processes_mentioning, options.container_id)
            for pid in survivors:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await self.runtime.delete(options.container_id, force=True)
            if not survivors or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        _log.warning("abandoned container creation", extra={"container": options.container_id})


def _processes_mentioning(container_id: str) -> list[int]:
    """Pids whose command line carries ``container_id`` as a whole argument."""
    wanted = container_id.encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        if wanted in args:
            found.append(int(entry.name))
    return found


async def _read_line(fd: int) -> bytes:
    """One line from a pipe without blocking the event loop (empty at EOF); closes ``fd``.

    A reader callback and ``os.read``, not a read-pipe transport and stream: conmon
    writes its one line at once, and the transport's set-up and teardown cost more.
    """
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    done: asyncio.Future[None] = loop.create_future()
    chunks: list[bytes] = []

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as err:
            if not done.done():
                done.set_exception(err)
            return
        chunks.append(data)
        if (not data or b"\n" in data) and not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks).split(b"\n", 1)[0].strip()
