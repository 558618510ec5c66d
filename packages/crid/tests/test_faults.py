"""crid.faults: inert without CRID_FAULT_POINTS; with it, a listed point pauses or kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, sys, time
from crid import faults
print(faults.enabled(), flush=True)
started = time.monotonic()
asyncio.run(faults.point("a.listed"))
faults.hit("b.unlisted")
print(round(time.monotonic() - started, 1), flush=True)
faults.hit("c.kill")
print("survived", flush=True)
"""


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "CRID_FAULT_POINTS"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_points_are_inert_without_the_variable() -> None:
    done = _run({})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "0.0", "survived"]


def test_listed_points_pause_or_kill_and_are_reported(tmp_path: Path) -> None:
    plan = tmp_path / "faults"
    plan.write_text("a.listed pause 0.5\nc.kill kill\n")
    done = _run({"CRID_FAULT_POINTS": str(plan)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout.split() == ["True", "0.5"]
    assert Path(f"{plan}.reached").read_text().split() == ["a.listed", "c.kill"]
