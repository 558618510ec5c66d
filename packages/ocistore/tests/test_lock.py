"""The store directory lock: a second process waits, then fails with a clear error."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocistore import Store, StoreLockedError

CHILD = """
import sys, time
from ocistore import Store
s = Store.open(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
s.close()
"""


def _hold(root: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_opener_gets_clear_error(tmp_path: Path) -> None:
    proc = _hold(tmp_path / "s", 30)
    try:
        started = time.monotonic()
        with pytest.raises(StoreLockedError, match=f"process {proc.pid}"):
            Store.open(tmp_path / "s", lock_timeout=0.3)
        assert time.monotonic() - started >= 0.3
    finally:
        proc.kill()
        proc.wait()
    # the kernel dropped the dead holder's lock
    Store.open(tmp_path / "s", lock_timeout=1).close()


def test_second_opener_waits_for_release(tmp_path: Path) -> None:
    proc = _hold(tmp_path / "s", 0.5)
    try:
        with Store.open(tmp_path / "s", lock_timeout=20) as s:
            assert s.list_images() == []
    finally:
        proc.wait()
    assert proc.returncode == 0
