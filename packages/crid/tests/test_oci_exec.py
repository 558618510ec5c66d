"""crid.oci._exec.run: a runtime command is killed on timeout, but a cancelled caller
lets it finish (within a grace period) rather than kill it half-way."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from crid.oci import _exec


def _sleeper(seconds: float, marker: Path) -> list[str]:
    """A command that sleeps, then leaves ``marker`` and prints ``done``."""
    code = (
        "import pathlib, sys, time\n"
        f"time.sleep({seconds})\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "print('done')\n"
    )
    return [sys.executable, "-S", "-c", code]


async def _started(task: asyncio.Task[_exec.Completed]) -> None:
    await asyncio.sleep(0.15)  # spawned and sleeping
    assert not task.done()


async def test_a_cancelled_caller_lets_the_command_finish(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    task = asyncio.create_task(_exec.run(_sleeper(0.5, marker), timeout=30))
    await _started(task)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()  # a second cancellation does not cut the wait short either
    with pytest.raises(asyncio.CancelledError):
        await task
    assert marker.exists()


async def test_a_command_past_the_grace_is_killed_and_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_exec, "CANCEL_GRACE", 0.3)
    marker = tmp_path / "finished"
    spawned: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def recording(*args: str, **kwargs: object) -> asyncio.subprocess.Process:
        proc = await spawn(*args, **kwargs)  # type: ignore[arg-type]
        spawned.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    task = asyncio.create_task(_exec.run(_sleeper(30, marker), timeout=60))
    await _started(task)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0.25 < time.monotonic() - started < 10
    (proc,) = spawned
    assert proc.returncode is not None  # killed and reaped
    assert not os.path.exists(f"/proc/{proc.pid}")
    assert not marker.exists()


async def test_a_timeout_kills_at_once(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await _exec.run(_sleeper(30, marker), timeout=0.3)
    assert time.monotonic() - started < 5
    assert not marker.exists()


async def test_a_finished_command_reports_its_output(tmp_path: Path) -> None:
    done = await _exec.run(_sleeper(0, tmp_path / "m"), timeout=30)
    assert done.returncode == 0 and done.stdout == b"done\n"
