"""crid's child watcher: asyncio subprocesses are reaped through pidfds on the loop that
started them (no thread per child), in any loop of any thread, with their exit codes."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from crid.child_watcher import PidfdWatcher, install_child_watcher, pidfd_supported

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12) or not pidfd_supported(),
    reason="Python 3.12+ waits on pidfds itself; this kernel has no pidfd_open",
)


async def _exit_code(code: int) -> int:
    proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", f"sleep 0.05; exit {code}")
    return await proc.wait()


def _waitpid_threads() -> list[str]:
    """The threads asyncio's default (threaded) watcher starts, one per child."""
    return [t.name for t in threading.enumerate() if "waitpid" in t.name]


async def test_children_are_reaped_without_a_thread_each() -> None:
    assert install_child_watcher()
    assert install_child_watcher()  # idempotent
    assert isinstance(asyncio.get_event_loop_policy().get_child_watcher(), PidfdWatcher)
    procs = [
        await asyncio.create_subprocess_exec("/bin/sh", "-c", f"sleep 0.2; exit {i}")
        for i in range(4)
    ]
    assert _waitpid_threads() == []
    assert [await p.wait() for p in procs] == [0, 1, 2, 3]


async def test_a_loop_in_another_thread_reaps_its_own_children() -> None:
    assert install_child_watcher()
    # asyncio.run in a worker thread (as ocinet's blocking wrappers do) while this
    # loop runs too: each child is watched on the loop that started it.
    other = asyncio.to_thread(asyncio.run, _exit_code(7))
    here = _exit_code(5)
    assert await asyncio.gather(other, here) == [7, 5]


async def test_output_and_a_killed_child() -> None:
    assert install_child_watcher()
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", "echo hello; exec sleep 30", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"hello\n"
    proc.kill()
    assert await asyncio.wait_for(proc.wait(), 5) == -9
