"""Running one CNI plugin binary: find it, exec it with the spec's environment, read its answer.

Every run is an asyncio subprocess with an explicit environment and a timeout; on timeout
the plugin's whole process group is killed and reaped. A cancelled caller lets the run
finish first (within a grace period): a plugin killed half-way can leave what no DEL
undoes, such as host-local's lease file created but not yet written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ocinet.errors import CNIError, PluginNotFoundError, PluginTimeoutError

__all__ = [
    "DEFAULT_PLUGIN_DIRS",
    "PluginExecutor",
    "PluginRequest",
    "SubprocessExecutor",
    "find_plugin",
]

log = logging.getLogger(__name__)

#: Where plugins are looked for when no directories are configured.
DEFAULT_PLUGIN_DIRS: tuple[str, ...] = ("/opt/cni/bin", "/usr/lib/cni")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BUSY_RETRIES = 5
_PIPE_CLOSE_WAIT = 1.0


@dataclass(frozen=True, kw_only=True)
class PluginRequest:
    """One plugin run: which binary, what to feed it, and in what environment."""

    plugin: str
    path: str
    command: str
    stdin: bytes
    env: Mapping[str, str]
    timeout: float


class PluginExecutor(Protocol):
    """Runs a plugin and returns its stdout; raises :class:`CNIError` if it fails."""

    async def run(self, request: PluginRequest) -> bytes:
        """Execute ``request``."""
        ...


def find_plugin(plugin: str, dirs: Sequence[str | os.PathLike[str]]) -> str:
    """The path of the executable ``plugin`` in the first of ``dirs`` that has it."""
    if not plugin or "/" in plugin or plugin in {".", ".."}:
        raise PluginNotFoundError(0, f"invalid plugin name {plugin!r}", plugin=plugin)
    for directory in dirs:
        candidate = Path(directory) / plugin
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise PluginNotFoundError(
        0,
        f"failed to find plugin {plugin!r} in path {[os.fspath(d) for d in dirs]}",
        plugin=plugin,
    )


def plugin_env(
    command: str,
    plugin_dirs: Sequence[str | os.PathLike[str]],
    *,
    container_id: str = "",
    netns: str = "",
    ifname: str = "",
    cni_args: str = "",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment the spec defines for a plugin run, plus ``PATH`` (plugins exec tools)."""
    env = {"PATH": os.environ.get("PATH") or _DEFAULT_PATH}
    env.update(extra or {})
    env["CNI_COMMAND"] = command
    env["CNI_PATH"] = os.pathsep.join(os.fspath(d) for d in plugin_dirs)
    if command in {"ADD", "DEL", "CHECK"}:
        env["CNI_CONTAINERID"] = container_id
        env["CNI_NETNS"] = netns
        env["CNI_IFNAME"] = ifname
        env["CNI_ARGS"] = cni_args
    return env


class SubprocessExecutor:
    """The real executor: an asyncio subprocess per run, in its own process group.

    ``cancel_grace``: how long a run whose caller is cancelled may go on before it is
    killed (never longer than its own timeout). Plugins are not built to be stopped
    half-way: host-local killed between creating its lease file and writing the owner
    into it leaves a lease that its DEL cannot find, and the address is lost.
    """

    def __init__(self, *, cancel_grace: float = 5.0) -> None:
        self.cancel_grace = cancel_grace

    async def run(self, request: PluginRequest) -> bytes:
        """Execute ``request``; retry briefly if the binary is being written (ETXTBSY)."""
        started = time.monotonic()
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                proc = await asyncio.create_subprocess_exec(
                    request.path,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=dict(request.env),
                    start_new_session=True,
                    close_fds=True,
                )
                break
            except OSError as err:
                if err.errno == errno.ETXTBSY and attempt < _BUSY_RETRIES:
                    await asyncio.sleep(0.2)
                    continue
                raise CNIError(
                    0,
                    f"cannot execute plugin: {err}",
                    plugin=request.plugin,
                    command=request.command,
                ) from err
        deadline = started + request.timeout
        talk = asyncio.ensure_future(proc.communicate(request.stdin))
        try:
            stdout, stderr = await asyncio.wait_for(asyncio.shield(talk), request.timeout)
        except TimeoutError as err:
            await _kill_and_reap(proc, talk)
            raise PluginTimeoutError(
                0,
                f"timed out after {request.timeout}s",
                plugin=request.plugin,
                command=request.command,
            ) from err
        except BaseException:
            await self._outlive_cancellation(proc, talk, deadline)
            raise
        elapsed = (time.monotonic() - started) * 1000
        log.debug(
            "event=cni_plugin_exec plugin=%s command=%s rc=%s ms=%.1f",
            request.plugin,
            request.command,
            proc.returncode,
            elapsed,
        )
        if proc.returncode != 0:
            raise plugin_error(request, proc.returncode, stdout, stderr)
        return stdout

    async def _outlive_cancellation(
        self,
        proc: asyncio.subprocess.Process,
        talk: asyncio.Future[tuple[bytes, bytes]],
        deadline: float,
    ) -> None:
        """Let the plugin end on its own within the grace period, else kill it; the
        caller then raises. Further cancellations do not cut the wait short."""
        grace = min(deadline, time.monotonic() + self.cancel_grace) - time.monotonic()
        await _settle(talk, grace)
        if not talk.done():
            log.warning("event=cni_plugin_killed_after_cancel pid=%s grace=%.1f", proc.pid, grace)
        await _kill_and_reap(proc, talk)


async def _settle(future: asyncio.Future[Any], timeout: float | None = None) -> None:
    """Wait until ``future`` is done or ``timeout`` passes, ignoring cancellations."""
    limit = None if timeout is None else time.monotonic() + timeout
    while not future.done():
        remaining = None if limit is None else limit - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future}, timeout=remaining)


async def _kill_and_reap(
    proc: asyncio.subprocess.Process, talk: asyncio.Future[tuple[bytes, bytes]]
) -> None:
    """Kill the plugin's process group unless it has ended; reap it and close its pipes,
    even if our caller is being cancelled meanwhile."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await _settle(asyncio.ensure_future(proc.wait()))
    # The pipes close with the group; a child that left it may hold them a while.
    await _settle(talk, _PIPE_CLOSE_WAIT)
    if not talk.done():
        talk.cancel()
        await _settle(talk)
    if not talk.cancelled():
        talk.exception()


def plugin_error(
    request: PluginRequest, returncode: int | None, stdout: bytes, stderr: bytes
) -> CNIError:
    """Turn a failed run into a :class:`CNIError` (the spec's error JSON when there is one)."""
    err_text = stderr.decode(errors="replace").strip()
    common = {"plugin": request.plugin, "command": request.command, "stderr": err_text}
    if stdout.strip():
        try:
            obj = json.loads(stdout)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and ("code" in obj or "msg" in obj):
            code = obj.get("code")
            return CNIError(
                int(code) if isinstance(code, int) else 0,
                str(obj.get("msg") or ""),
                str(obj.get("details") or ""),
                **common,
            )
        return CNIError(
            0,
            f"plugin exited {returncode} with unparsable output {stdout[:500]!r}",
            **common,
        )
    if err_text:
        return CNIError(0, f"plugin exited {returncode}: {err_text}", **common)
    return CNIError(0, f"plugin exited {returncode} with no error message", **common)
