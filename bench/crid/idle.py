"""crid's idle footprint and RPC latency: RSS after start, Version/Status round trips.

Targets (README of the project): idle RSS <= 40 MiB, Status <= 1 ms. Run as root from the
checkout: ``uv run python bench/crid/idle.py [--calls N]``. It starts ``crid serve`` on a
socket under a temp dir, so it never touches /run/crid.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from list_status import daemon_config

from crid._cri.v1 import api_pb2, api_pb2_grpc


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS, and its anonymous and file-backed parts (grpc's shared library is file)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            found[key] = int(value.split()[0]) / 1024
    return found


def timed(call: object, request: object, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call(request, timeout=10)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = daemon_config(root)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "crid", "serve", "--config", str(config), "--init-defaults"],
            stderr=subprocess.DEVNULL,
        )
        sock = root / "run" / "crid.sock"
        try:
            while not sock.exists():
                time.sleep(0.005)
            startup_ms = (time.perf_counter() - started) * 1000
            with grpc.insecure_channel(f"unix://{sock}") as channel:
                stub = api_pb2_grpc.RuntimeServiceStub(channel)
                timed(stub.Version, api_pb2.VersionRequest(), 50)  # warm up
                version = timed(stub.Version, api_pb2.VersionRequest(), args.calls)
                status = timed(stub.Status, api_pb2.StatusRequest(), args.calls)
            time.sleep(0.5)
            memory = memory_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)

    def row(name: str, samples: list[float]) -> str:
        p50 = statistics.median(samples)
        p99 = statistics.quantiles(samples, n=100)[98]
        return f"{name:<22} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms"

    print(f"crid startup to socket  {startup_ms:7.1f} ms")
    print(
        f"idle RSS after RPCs     {memory['VmRSS']:7.1f} MiB   (target <= 40 MiB;"
        f" anonymous {memory['RssAnon']:.1f}, file-backed {memory['RssFile']:.1f})"
    )
    print(row("Version round trip", version))
    print(row("Status round trip", status) + "   (target <= 1 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
