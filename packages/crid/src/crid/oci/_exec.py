"""Running an external binary: argv only, explicit environment, timeout, always reaped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Completed", "environment", "find_binary", "run", "version_line"]

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
    """Run ``argv`` to completion; on timeout or cancellation kill it and reap it."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(env),
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Completed(returncode=proc.returncode, stdout=stdout, stderr=stderr)


async def version_line(binary: Path, *, timeout: float = 5.0) -> str:
    """The first line ``<binary> --version`` prints, or ``unknown`` when it fails."""
    try:
        done = await run([str(binary), "--version"], timeout=timeout)
    except (OSError, TimeoutError):
        return "unknown"
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else "unknown"
