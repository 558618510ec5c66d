"""Signalling an init process directly (crid.oci.init_signal), against real processes:
only the process that started at the recorded time is ever signalled."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from crid.oci.init_signal import init_start_time, shares_pid_namespace, signal_init, start_time
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
    assert start_time(0) == 0 and start_time(-1) == 0
    assert start_time(2**22 + 1) == 0  # above pid_max: no such process


def test_the_recorded_process_is_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    started = start_time(sleeper.pid)
    assert signal_init(sleeper.pid, started, signal.SIGKILL, shared_namespace=False)
    assert sleeper.wait(5) == -signal.SIGKILL


def test_another_start_time_is_left_to_the_runtime(sleeper: subprocess.Popen[bytes]) -> None:
    started = start_time(sleeper.pid)
    # As if the pid had been reused: the process under it started at another time.
    assert not signal_init(sleeper.pid, started + 1, signal.SIGKILL, shared_namespace=False)
    assert not signal_init(
        sleeper.pid, 0, signal.SIGKILL, shared_namespace=False
    )  # nothing recorded
    assert not signal_init(0, started, signal.SIGKILL, shared_namespace=False)
    assert sleeper.poll() is None  # untouched


def test_a_reaped_process_is_left_to_the_runtime() -> None:
    proc = subprocess.Popen(["true"])
    started = start_time(proc.pid)
    proc.wait()
    assert not signal_init(proc.pid, started, signal.SIGKILL, shared_namespace=False)


def test_sigkill_of_a_shared_pid_namespace_is_left_to_the_runtime(
    sleeper: subprocess.Popen[bytes],
) -> None:
    started = start_time(sleeper.pid)
    # runc >= 1.2 kills every process of such a container, not only its init
    assert not signal_init(sleeper.pid, started, signal.SIGKILL, shared_namespace=True)
    assert sleeper.poll() is None
    # any other signal goes to the init alone, whoever sends it
    assert signal_init(sleeper.pid, started, signal.SIGTERM, shared_namespace=True)
    assert sleeper.wait(5) == -signal.SIGTERM


def test_which_specs_share_a_pid_namespace() -> None:
    def spec(*namespaces: Namespace) -> Spec:
        return Spec(linux=Linux(namespaces=namespaces))

    assert not shares_pid_namespace(spec(Namespace(type="mount"), Namespace(type="pid")))
    assert shares_pid_namespace(spec(Namespace(type="pid", path="/proc/1/ns/pid")))  # joined
    assert shares_pid_namespace(spec(Namespace(type="mount")))  # the node's
    assert shares_pid_namespace(Spec())


def test_a_start_time_is_recorded_only_for_a_child_of_conmon(
    sleeper: subprocess.Popen[bytes],
) -> None:
    # here this test process stands for conmon, the sleeper's parent
    assert init_start_time(sleeper.pid, os.getpid()) == start_time(sleeper.pid) > 0
    assert init_start_time(sleeper.pid, os.getppid()) == 0  # not its parent
    assert init_start_time(sleeper.pid, 0) == 0
    assert init_start_time(2**22 + 1, os.getpid()) == 0
