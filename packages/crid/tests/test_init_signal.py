"""Signalling an init process directly (crid.oci.init_signal), against real processes:
only the process that started at the recorded time is ever signalled."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from crid.oci.init_signal import init_start_time, signal_init, start_time
from ocispec.runtime import Linux, Namespace, Spec


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _ticks_of(pid: int) -> int:
    text = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 (read once)
    return int(text[text.rfind(")") + 2 :].split()[19])


def test_start_time_is_the_proc_stat_field() -> None:
    assert start_time(os.getpid()) == _ticks_of(os.getpid()) > 0
    assert start_time(0) == 0
    assert start_time(2**22 + 1) == 0  # above pid_max: no such process


def test_the_recorded_process_is_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    started = start_time(sleeper.pid)
    assert signal_init(sleeper.pid, started, signal.SIGKILL)
    assert sleeper.wait(5) == -signal.SIGKILL


def test_another_start_time_is_left_to_the_runtime(sleeper: subprocess.Popen[bytes]) -> None:
    started = start_time(sleeper.pid)
    # As if the pid had been reused: the process under it started at another time.
    assert not signal_init(sleeper.pid, started + 1, signal.SIGKILL)
    assert not signal_init(sleeper.pid, 0, signal.SIGKILL)  # nothing recorded
    assert not signal_init(0, started, signal.SIGKILL)
    assert sleeper.poll() is None  # untouched


def test_a_reaped_process_is_left_to_the_runtime() -> None:
    proc = subprocess.Popen(["true"])
    started = start_time(proc.pid)
    proc.wait()
    assert not signal_init(proc.pid, started, signal.SIGKILL)


def test_only_a_container_with_its_own_pid_namespace_gets_a_start_time(
    sleeper: subprocess.Popen[bytes],
) -> None:
    def spec(*namespaces: Namespace) -> Spec:
        return Spec(linux=Linux(namespaces=namespaces))

    own = spec(Namespace(type="mount"), Namespace(type="pid"))
    assert init_start_time(own, sleeper.pid) == start_time(sleeper.pid) > 0
    joined = spec(Namespace(type="pid", path="/proc/1/ns/pid"))
    assert init_start_time(joined, sleeper.pid) == 0  # the pod's or another's
    assert init_start_time(spec(Namespace(type="mount")), sleeper.pid) == 0  # the node's
    assert init_start_time(Spec(), sleeper.pid) == 0
    assert init_start_time(own, 0) == 0
