"""The churn soak (``make soak`` only): 20 pod slots recreated over and over for
``SOAK_MINUTES`` minutes (default 60), with ExecSync and stats calls in between.

Passes when no RPC failed, crid's RSS after the warm-up (the first fifth of the run, at
least one full round) stays within 10% of its level when the warm-up ended, and removing
everything through the CRI leaves nothing (the leak checker). The numbers are printed and
written to ``soak-report.json`` in the node's directory.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from ociimage.testing import TestImages

from ._leaks import assert_no_leaks, snapshot
from ._node import Node

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.soak,
    pytest.mark.binaries("runc", "conmon", "catatonit", "iptables-save", "/usr/lib/cni/bridge"),
]

PODS = 20
WORKERS = 4
#: A bound on the work whatever the duration: pod lives in all.
MAX_LIVES = 200_000
RSS_SLACK = 0.10


@dataclass
class Tally:
    """What the run did, shared by the workers."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    lives: int = 0
    rpcs: int = 0
    errors: list[str] = field(default_factory=list)

    def rpc(self, count: int = 1) -> None:
        with self.lock:
            self.rpcs += count


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _life(node: Node, image: str, slot: int, generation: int, tally: Tally) -> None:
    """One pod's whole life: run, create, start, exec, stats, stop, remove."""
    runtime = node.runtime
    config = node.pod_config(f"soak-{slot}", attempt=generation)
    pod_id = runtime.RunPodSandbox(
        api_pb2.RunPodSandboxRequest(config=config), timeout=60
    ).pod_sandbox_id
    container_id = runtime.CreateContainer(
        api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id,
            config=node.container_config(image, attempt=generation),
            sandbox_config=config,
        ),
        timeout=60,
    ).container_id
    runtime.StartContainer(api_pb2.StartContainerRequest(container_id=container_id), timeout=60)
    for _ in range(3):
        reply = runtime.ExecSync(
            api_pb2.ExecSyncRequest(container_id=container_id, cmd=["echo", "soak"], timeout=10),
            timeout=60,
        )
        assert (reply.exit_code, reply.stdout) == (0, b"soak\n"), reply
        runtime.ContainerStats(api_pb2.ContainerStatsRequest(container_id=container_id), timeout=60)
        runtime.ListContainerStats(api_pb2.ListContainerStatsRequest(), timeout=60)
        runtime.ListPodSandboxStats(api_pb2.ListPodSandboxStatsRequest(), timeout=60)
    runtime.StopContainer(
        api_pb2.StopContainerRequest(container_id=container_id, timeout=5), timeout=60
    )
    runtime.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=container_id), timeout=60)
    runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
    runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
    tally.rpc(7 + 3 * 4)
    with tally.lock:
        tally.lives += 1


def _worker(
    node: Node, image: str, slots: range, deadline: float, tally: Tally, stop: threading.Event
) -> None:
    generation = 0
    while time.monotonic() < deadline and not stop.is_set() and tally.lives < MAX_LIVES:
        for slot in slots:
            try:
                _life(node, image, slot, generation, tally)
            except (grpc.RpcError, AssertionError) as err:
                with tally.lock:
                    tally.errors.append(f"slot {slot} generation {generation}: {err}")
                stop.set()
                return
        generation += 1


def test_fault_soak_churn(node: Node, test_images: TestImages) -> None:
    minutes = float(os.environ.get("SOAK_MINUTES", "60"))
    assert node.proc is not None
    pid = node.proc.pid
    before = snapshot(node.scope)
    tally, stop = Tally(), threading.Event()
    started = time.monotonic()
    deadline = started + minutes * 60
    warm_until = started + minutes * 60 / 5
    per_worker = PODS // WORKERS
    samples: list[tuple[float, int]] = []
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [
            pool.submit(
                _worker,
                node,
                test_images.busybox.reference,
                range(w * per_worker, (w + 1) * per_worker),
                deadline,
                tally,
                stop,
            )
            for w in range(WORKERS)
        ]
        while not all(f.done() for f in futures):
            samples.append((time.monotonic() - started, _rss_kib(pid)))
            time.sleep(1)
        for future in futures:
            future.result()
    warm = [rss for at, rss in samples if at <= warm_until - started] or [samples[0][1]]
    after = [rss for at, rss in samples if at > warm_until - started] or [warm[-1]]
    baseline = warm[-1]
    report = {
        "minutes": minutes,
        "pod_lives": tally.lives,
        "rpcs": tally.rpcs,
        "rpc_errors": tally.errors,
        "rss_kib_start": samples[0][1],
        "rss_kib_after_warmup": baseline,
        "rss_kib_max_after_warmup": max(after),
        "rss_kib_end": samples[-1][1],
    }
    (node.tmp / "soak-report.json").write_text(json.dumps(report, indent=2))
    print("\nsoak:", json.dumps(report))
    assert not tally.errors, tally.errors
    assert max(after) <= baseline * (1 + RSS_SLACK), report
    node.clean_up()
    assert_no_leaks(before, node.scope)
