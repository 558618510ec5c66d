"""crid.heap: the malloc arena cap and the trim after a burst, on this machine's glibc.

Each check runs in a fresh interpreter, so the heap it looks at is its own.
"""

from __future__ import annotations

import os
import subprocess
import sys

BURST = """
from pathlib import Path
from crid.heap import HeapTrimmer

def anon_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

trimmer = HeapTrimmer(threshold=1 << 20)
assert not trimmer.check(), "nothing happened yet"
burst = [bytes(1000) + bytes([i % 256]) for i in range(40_000)]  # ~40 MB of malloc blocks
pinned = bytes(1000) + b"top"  # keeps the heap's top in use: no automatic trim
del burst
before = anon_kib()
assert trimmer.check(), "a 40 MB burst ended: trim"
after = anon_kib()
assert before - after > 20_000, (before, after)
assert not trimmer.check(), "nothing freed since the trim"
assert trimmer.trims == 1
print("ok", before, after)
"""


def run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_trim_after_a_burst_gives_the_freed_pages_back() -> None:
    assert run(BURST).startswith("ok")


def test_the_arena_cap_applies_unless_the_environment_sets_one() -> None:
    code = "from crid.heap import limit_arenas; print(limit_arenas())"
    assert run(code) == "True"
    assert run(code, MALLOC_ARENA_MAX="4") == "False"


TRICKLE = """
import time
from pathlib import Path
from crid.heap import HeapTrimmer

def anon_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

trimmer = HeapTrimmer(threshold=1 << 20, settle=60.0)
start = time.monotonic()
blocks = [bytes(1000) + bytes([i % 256]) for i in range(40_000)]  # ~40 MB of malloc blocks
trimmer.check(now=start)
del blocks[10_000:10_800]  # ~0.8 MB freed in the middle: below the burst threshold
before = anon_kib()
assert not trimmer.check(now=start + 5), "no burst, and not settled yet"
assert trimmer.check(now=start + 61), "the heap moved and a minute passed: trim"
after = anon_kib()
assert before - after > 400, (before, after)
assert not trimmer.check(now=start + 200), "nothing moved since the trim"
assert trimmer.trims == 1
print("ok", before, after)
"""


def test_frees_that_trickle_in_below_the_threshold_are_trimmed_once_settled() -> None:
    assert run(TRICKLE).startswith("ok")
