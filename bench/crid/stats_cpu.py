"""crid's CPU while the kubelet polls stats, beside the bare cost of the files it reads.

The kubelet asks ListPodSandboxStats and ListContainerStats every 10 s or so (eviction
manager, summary API); crid answers from samples its stats sampler takes every second
while stats are asked for (so ``crictl stats``, which takes two samples a second apart,
sees a rate). This bench sets up 100 pods with one running container each (as
``list_status.py`` does), starts ``crid serve``, polls both RPCs every 10 s for
``--seconds``, and reports crid's user and system CPU as a share of one core. The floor,
in the same run: the cgroup files one sampler round reads (5 per cgroup on v1, 4 on v2,
for 100 pod and 100 container cgroups), read raw once a second, with no parsing.
``--metrics`` polls ListPodSandboxMetrics too (``/metrics/cadvisor`` of a kubelet that
takes its stats from the CRI): its detailed samples read ~25 more files per cgroup and
every process's open files, once per ``metrics_collection_period`` (10 s).
Run as root from the checkout:
``uv run python bench/crid/stats_cpu.py [--seconds N] [--metrics]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from list_status import PARENT, daemon_config, populate, remove_containers

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.state import Registry
from crid.stats.paths import cgroup_dir

#: The files one sampler round reads per cgroup: (controller, name), v1 and v2.
V1_FILES = (
    ("memory", "memory.stat"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.limit_in_bytes"),
    ("cpuacct", "cpuacct.usage"),
    ("pids", "pids.current"),
)
V2_FILES = (
    ("cpu", "cpu.stat"),
    ("memory", "memory.stat"),
    ("memory", "memory.current"),
    ("memory", "memory.max"),
)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def sampled_files(db: Path, hierarchies: Hierarchies) -> list[str]:
    """The cgroup files of every pod and container recorded in the state database."""
    registry = Registry.open(db)
    try:
        cgroups = [s.cgroup_parent for s in registry.sandboxes() if s.cgroup_parent]
        cgroups += [cgroup_dir(c.cgroup_path) for c in registry.containers() if c.cgroup_path]
    finally:
        registry.close()
    names = V2_FILES if hierarchies.unified else V1_FILES
    files = []
    for cgroup in cgroups:
        for controller, name in names:
            directory = hierarchies.controller_path(controller, cgroup)
            if directory is not None:
                files.append(str(directory / name))
    return files


def floor(files: list[str], seconds: float) -> tuple[float, float, int]:
    """Read ``files`` raw once a second for ``seconds``; (user, system) share of a core."""
    start, before = time.monotonic(), os.times()
    rounds = 0
    while time.monotonic() - start < seconds:
        for path in files:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.read(fd, 65536)
            finally:
                os.close(fd)
        rounds += 1
        time.sleep(max(0.0, start + rounds - time.monotonic()))
    after, elapsed = os.times(), time.monotonic() - start
    return (after.user - before.user) / elapsed, (after.system - before.system) / elapsed, rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--metrics", action="store_true", help="poll ListPodSandboxMetrics too")
    args = parser.parse_args()
    hierarchies = Hierarchies.detect()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = daemon_config(root)
        runc_root = root / "run" / "runtimes" / "runc"
        db = root / "root" / "state.db"
        try:
            asyncio.run(populate(db, args.pods, hierarchies, root, runc_root))
            files = sampled_files(db, hierarchies)
            proc = subprocess.Popen(
                [sys.executable, "-m", "crid", "serve", "--config", str(config)],
                stderr=subprocess.DEVNULL,
            )
            try:
                sock = root / "run" / "crid.sock"
                while not sock.exists():
                    time.sleep(0.01)
                with grpc.insecure_channel(f"unix://{sock}") as channel:
                    stub = api_pb2_grpc.RuntimeServiceStub(channel)
                    stub.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest(), timeout=30)
                    time.sleep(3)  # the first rounds, and the imports of the first call
                    (user0, sys0), start = cpu_seconds(proc.pid), time.monotonic()
                    polls = 0
                    while time.monotonic() - start < args.seconds:
                        stub.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest(), timeout=30)
                        stub.ListContainerStats(api_pb2.ListContainerStatsRequest(), timeout=30)
                        if args.metrics:
                            stub.ListPodSandboxMetrics(
                                api_pb2.ListPodSandboxMetricsRequest(), timeout=30
                            )
                        polls += 1
                        time.sleep(max(0.0, start + 10 * polls - time.monotonic()))
                    (user1, sys1), elapsed = cpu_seconds(proc.pid), time.monotonic() - start
            finally:
                proc.terminate()
                proc.wait(timeout=20)
            floor_user, floor_sys, rounds = floor(files, args.seconds)
        finally:
            remove_containers(runc_root)
            hierarchies.remove(PARENT)
    crid_user, crid_sys = (user1 - user0) / elapsed, (sys1 - sys0) / elapsed
    polled = "stats and metrics" if args.metrics else "stats"
    print(f"{args.pods} pods with one running container each; {polled} polled every 10 s")
    print(f"{'% of a core':<40}{'user':>8}{'system':>8}{'total':>8}")
    rows = (
        (f"crid, {elapsed:.0f} s, {polls} polls", crid_user, crid_sys),
        (f"floor: {len(files)} files read raw, {rounds} rounds", floor_user, floor_sys),
    )
    for label, user, system in rows:
        print(f"{label:<40}{100 * user:>8.2f}{100 * system:>8.2f}{100 * (user + system):>8.2f}")
    ratio = (crid_user + crid_sys) / (floor_user + floor_sys)
    note = " (the floor reads the stats files only, not the metrics' ones)" if args.metrics else ""
    print(f"crid ÷ floor: {ratio:.2f}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
