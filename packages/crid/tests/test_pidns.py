"""A pod's pinned PID namespace (crid.sandbox.pidns), against real holders: its init is
found through the pin, and releasing it leaves no process of the namespace alive, with
the kernel's pid translation and with the /proc scan older kernels need."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.sandbox import pidns

pytestmark = [pytest.mark.root, pytest.mark.binaries("catatonit", "unshare", "setsid", "nsenter")]


@pytest.fixture(params=["ioctl", "proc-scan"])
def translation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both ways of finding the init: the kernel's, and the scan (a request number no
    kernel knows makes the ioctl fail as it does before Linux 6.7)."""
    if request.param == "proc-scan":
        monkeypatch.setattr(pidns, "_NS_GET_TGID_FROM_PIDNS", 0x8004B7FF)
    yield request.param


def _members(pin: Path) -> list[int]:
    """Pids in the pinned namespace, by a scan of /proc (independent of the code)."""
    inode = pin.stat().st_ino
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "ns" / "pid").stat().st_ino == inode:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _becomes_catatonit(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if Path(argv[0].decode()).name == "catatonit" and argv[1:2] == [b"-P"]:
            return True
        time.sleep(0.005)
    return False


def test_the_init_is_the_holder_and_release_empties_the_namespace(
    tmp_path: Path, translation: str
) -> None:
    pin = tmp_path / "pidns"
    pidns.pin_pid_namespace(pin)
    try:
        members = _members(pin)
        assert len(members) == 1
        # the init is there once unshare has forked it; it may still be execing catatonit
        assert _becomes_catatonit(members[0])
        if translation == "ioctl":
            assert pidns._init_pid(pin) == members[0]
        else:
            with pytest.raises(pidns._NoTranslationError):
                pidns._init_pid(pin)
        assert pidns._has_init(pin)
        # a workload process joins the namespace, as a container does
        joined = subprocess.Popen(["nsenter", f"--pid={pin}", "sleep", "600"])  # forks into it
        deadline = time.monotonic() + 5
        while len(_members(pin)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_members(pin)) == 2
        inode = pin.stat().st_ino
    finally:
        pidns.release_pid_namespace(pin)
    assert not pin.exists()
    assert joined.wait(timeout=5) != 0  # nsenter reports its child's death by SIGKILL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [
            pid
            for pid in members
            if Path(f"/proc/{pid}/ns/pid").exists()
            and Path(f"/proc/{pid}/ns/pid").stat().st_ino == inode
        ]
        if not left:
            break
        time.sleep(0.01)
    assert not left
    pidns.release_pid_namespace(pin)  # idempotent


def test_no_init_is_reported_once_it_died(tmp_path: Path) -> None:
    pin = tmp_path / "pidns"
    pidns.pin_pid_namespace(pin)
    try:
        init = pidns._init_pid(pin)
        assert init is not None
        pidns._kill_init(pin)
        deadline = time.monotonic() + 5
        while pidns._init_pid(pin) is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pidns._init_pid(pin) is None and not pidns._has_init(pin)
        pidns._kill_init(pin)  # nothing left to signal: no error
    finally:
        pidns.release_pid_namespace(pin)
