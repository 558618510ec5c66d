"""Running an external binary: argv only, explicit environment, timeout, always reaped;
a cancelled caller lets it finish (within a grace period) rather than kill it half-way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from crid.threads import settled

__all__ = ["CANCEL_GRACE", "Completed", "environment", "find_binary", "run", "version_line"]

_log = logging.getLogger(__name__)

#: Seconds a command whose caller was cancelled may go on before it is killed.
CANCEL_GRACE = 5.0
_PIPE_CLOSE_WAIT = 1.0

_SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True, kw_only=True)
class Completed:
    """What a finished process left: exit code and captured output."""

    returncode: int
    stdout: bytes
    stderr: bytes


def find_binary(configured: str, name: str) -> Path | None:
    """The executable to run: ``configured`` when set, else ``name`` looked up in PATH."""
    if configured:
        path = Path(configured)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    found = shutil.which(name)
    return Path(found) if found else None


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal, explicit environment for a child: PATH and locale, plus ``extra``."""
    env = {key: os.environ[key] for key in _SAFE_ENV_KEYS if key in os.environ}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if extra:
        env.update(extra)
    return env


async def run(
    argv: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> Completed:
    """Run ``argv`` to completion; on timeout kill it and reap it.

    A cancelled caller lets the command finish first, for :data:`CANCEL_GRACE` seconds
    at most and never past ``timeout``; only then is it killed. The runtime's commands
    are not made to be stopped half-way: ``runc delete`` killed between removing the
    cgroup and the state directory, or ``runc update`` between two controllers, leaves a
    container half removed or half limited.
    """
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(env),
    )
    talk = asyncio.ensure_future(proc.communicate(stdin))
    try:
        stdout, stderr = await asyncio.wait_for(asyncio.shield(talk), timeout)
    except TimeoutError:
        await _kill_and_reap(proc, talk)
        raise
    except BaseException:
        grace = min(started + timeout, time.monotonic() + CANCEL_GRACE) - time.monotonic()
        if not await settled(talk, grace):
            _log.warning("%s still running %.1f s after a cancellation: killed", argv[0], grace)
        await _kill_and_reap(proc, talk)
        raise
    assert proc.returncode is not None
    return Completed(returncode=proc.returncode, stdout=stdout, stderr=stderr)


async def _kill_and_reap(
    proc: asyncio.subprocess.Process, talk: asyncio.Future[tuple[bytes, bytes]]
) -> None:
    """Kill the process unless it has ended, then reap it and let its pipes close, even
    while our caller is being cancelled."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await settled(asyncio.ensure_future(proc.wait()))
    if not await settled(talk, _PIPE_CLOSE_WAIT):  # a child of it may hold them
        talk.cancel()
        await settled(talk)


async def version_line(binary: Path, *, timeout: float = 5.0) -> str:
    """The first line ``<binary> --version`` prints, or ``unknown`` when it fails."""
    try:
        done = await run([str(binary), "--version"], timeout=timeout)
    except (OSError, TimeoutError):
        return "unknown"
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else "unknown"
