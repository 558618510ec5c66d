"""Stops wait for exit files without polling: the exit monitor (or a mark-lost) wakes them.

Unit tests of :class:`ExitWaits` on real files, and StopContainer end to end with the
exit monitor in its polling fallback (inotify made unavailable).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crid._cri.v1 import api_pb2
from crid.container import monitor
from crid.container.exit_waits import ExitWaits

from ._lifecycle import container_config, crid_env, pod_config, run_pod, start_container, status


def _waits() -> ExitWaits:
    """Watched (a monitor counted) with a check interval far beyond every test's
    timeout: only a wake can end a wait early."""
    waits = ExitWaits(watched=3600.0)
    waits.monitors = 1
    return waits


async def test_an_existing_exit_file_ends_the_wait_at_once(tmp_path: Path) -> None:
    exit_file = tmp_path / "c1"
    exit_file.write_text("0")
    assert await _waits().wait("c1", 3600.0, exit_file.exists)


async def test_a_wake_after_the_exit_file_ends_the_wait(tmp_path: Path) -> None:
    waits, exit_file = _waits(), tmp_path / "c1"
    waiting = asyncio.create_task(waits.wait("c1", 30.0, exit_file.exists))
    await asyncio.sleep(0.05)
    waits.wake("c2")  # another container's exit: checks nothing here
    exit_file.write_text("0")
    waits.wake("c1")
    assert await asyncio.wait_for(waiting, 5.0)


async def test_a_wake_without_the_exit_waits_on(tmp_path: Path) -> None:
    """Woken for a name whose condition is not met (a scan's spurious wake): it waits
    again and times out, and leaves no waiter behind."""
    waits = _waits()
    waiting = asyncio.create_task(waits.wait("c1", 0.3, (tmp_path / "c1").exists))
    await asyncio.sleep(0.05)
    waits.wake("c1")
    assert not await waiting
    assert not waits._waiters


async def test_marked_lost_is_woken_by_its_own_condition() -> None:
    """A container marked EXITED without an exit file: the marker's wake ends the wait."""
    waits, lost = _waits(), {"c1": False}
    waiting = asyncio.create_task(waits.wait("c1", 30.0, lambda: lost["c1"]))
    await asyncio.sleep(0.05)
    lost["c1"] = True
    waits.wake("c1")
    assert await asyncio.wait_for(waiting, 5.0)


async def test_without_a_monitor_the_wait_checks_by_itself(tmp_path: Path) -> None:
    waits, exit_file = ExitWaits(), tmp_path / "c1"
    assert waits.monitors == 0
    waiting = asyncio.create_task(waits.wait("c1", 30.0, exit_file.exists))
    await asyncio.sleep(0.05)
    exit_file.write_text("0")  # nobody wakes it
    assert await asyncio.wait_for(waiting, 5.0)


async def test_concurrent_waiters_of_one_name_all_wake(tmp_path: Path) -> None:
    waits, exit_file = _waits(), tmp_path / "c1"
    waiting = [asyncio.create_task(waits.wait("c1", 30.0, exit_file.exists)) for _ in range(3)]
    await asyncio.sleep(0.05)
    exit_file.write_text("0")
    waits.wake("c1")
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5.0) == [True, True, True]
    assert not waits._waiters


class _NoInotify:
    def __init__(self) -> None:
        raise OSError(24, "inotify instances exhausted (made unavailable by the test)")


@pytest.mark.root
@pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge")
async def test_stop_is_graceful_with_the_monitor_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without inotify the monitor's scans wake the stop: the process's own exit (0 from
    its TERM trap) is recorded, not a SIGKILL after the timeout."""
    monkeypatch.setattr(monitor, "Inotify", _NoInotify)
    async with crid_env(tmp_path) as env:
        assert env.lifecycle.containers.exit_waits.monitors == 1
        pod = pod_config(env)
        pod_id = await run_pod(env, pod)
        script = "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done"
        cid = await start_container(env, pod_id, pod, container_config("t", [script]))
        log = env.tmp / "logs" / "web" / "t.log"
        for _ in range(100):
            if log.exists() and "up" in log.read_text():
                break
            await asyncio.sleep(0.05)
        await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid, timeout=60))
        stopped = await status(env, cid)
        assert stopped.state == api_pb2.CONTAINER_EXITED
        assert (stopped.exit_code, stopped.reason) == (0, "Completed")
