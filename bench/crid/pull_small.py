"""Benchmark: CRI PullImage + RemoveImage of a small image, crid beside containerd 1.6.

What critest's benchmark mode measures (20 pulls of a ~2.4 MB busybox, each followed
by its removal), with containerd as the reference in the same run. The bench builds
the busybox image itself (Debian's busybox-static), pushes it to a private
``docker-registry`` on 127.0.0.1, then starts

* ``crid serve`` with a private root, run root, socket, registries.conf and policy;
* ``containerd`` (Debian's 1.6.20, installed here with apt-get when missing) with a
  private config, root, state and socket, its CRI plugin on and a registry mirror
  entry that sends the loopback registry's host to plain HTTP.

Both are driven over their CRI ImageService with crid's own generated stubs
(``crid._cri.v1``), alternating one cycle each so load on the shared cores hits both
alike. Printed: medians, quartiles and the ratio (< 1: crid is faster). Run as root
from the worktree root:

    uv run python bench/crid/pull_small.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from ociimage.testing import LocalRegistry, busybox_image, push_image

CONTAINERD = "containerd"


def ensure_containerd() -> str:
    """The containerd binary, installed from Debian's archive when missing."""
    found = shutil.which(CONTAINERD)
    if found is not None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "containerd"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which(CONTAINERD)
    if found is None:
        raise SystemExit("containerd is not installed and apt-get could not install it")
    return found


def wait_for(sock: Path, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.01)


def start_crid(work: Path, registry_host: str) -> tuple[subprocess.Popen[bytes], Path]:
    (work / "net.d").mkdir(parents=True)
    (work / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{registry_host}"\ninsecure = true\n'
    )
    (work / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    config = work / "crid.toml"
    config.write_text(
        f'[crid]\nroot = "{work}/root"\nrunroot = "{work}/run"\n'
        f'[crid.api]\nlisten = "{work}/run/crid.sock"\n'
        f'[crid.network]\nnetwork_dir = "{work}/net.d"\n'
        f'[crid.image]\nregistries_conf = "{work}/registries.conf"\n'
        f'registries_conf_dir = "{work}/registries.conf.d"\n'
        f'signature_policy = "{work}/policy.json"\n'
        f'registries_d = "{work}/registries.d"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "crid", "serve", "--config", str(config)],
        stderr=subprocess.DEVNULL,
    )
    sock = work / "run" / "crid.sock"
    wait_for(sock, proc, "crid")
    return proc, sock


def start_containerd(
    binary: str, work: Path, registry_host: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """containerd with everything under ``work``: nothing of the host's is used."""
    work.mkdir(parents=True)
    (work / "net.d").mkdir()
    sock = work / "containerd.sock"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    config = work / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{work}/root"\nstate = "{work}/state"\n'
        'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", '
        '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", '
        '"io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", '
        '"io.containerd.internal.v1.tracing"]\n'
        f'[grpc]\naddress = "{sock}"\n'
        f'[ttrpc]\naddress = "{sock}.ttrpc"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\npath = "{work}/opt"\n'
        f'[{cri}]\nstream_server_address = "127.0.0.1"\nstream_server_port = "0"\n'
        f'[{cri}.cni]\nbin_dir = "/usr/lib/cni"\nconf_dir = "{work}/net.d"\n'
        f'[{cri}.registry.mirrors."{registry_host}"]\nendpoint = ["http://{registry_host}"]\n'
    )
    proc = subprocess.Popen(
        [binary, "--config", str(config), "--log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "containerd.log", "wb"),  # noqa: SIM115 - the child holds it
    )
    wait_for(sock, proc, "containerd")
    return proc, sock


def cycle(stub: api_pb2_grpc.ImageServiceStub, reference: str) -> tuple[float, float]:
    """One PullImage then RemoveImage; the two latencies in ms."""
    started = time.perf_counter()
    reply = stub.PullImage(
        api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)), timeout=120
    )
    pulled = time.perf_counter()
    stub.RemoveImage(
        api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=reply.image_ref)), timeout=120
    )
    removed = time.perf_counter()
    return (pulled - started) * 1e3, (removed - pulled) * 1e3


def summary(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": round(q[1], 1), "q1": round(q[0], 1), "q3": round(q[2], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="untimed cycles each first")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    binary = ensure_containerd()
    work = Path(tempfile.mkdtemp(prefix="crid-pull-small-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with LocalRegistry(workdir=work / "registry") as registry:
            pushed = push_image(registry, busybox_image(repository="bench/busybox"))
            size = sum(layer.size for layer in pushed.image.layers)
            crid, crid_sock = start_crid(work / "crid", registry.host)
            procs.append(crid)
            ctrd, ctrd_sock = start_containerd(binary, work / "containerd", registry.host)
            procs.append(ctrd)
            times: dict[str, tuple[list[float], list[float]]] = {
                "crid": ([], []),
                "containerd": ([], []),
            }
            with (
                grpc.insecure_channel(f"unix://{crid_sock}") as crid_channel,
                grpc.insecure_channel(f"unix://{ctrd_sock}") as ctrd_channel,
            ):
                stubs = {
                    "crid": api_pb2_grpc.ImageServiceStub(crid_channel),
                    "containerd": api_pb2_grpc.ImageServiceStub(ctrd_channel),
                }
                for n in range(args.warmup + args.runs):
                    for name, stub in stubs.items():
                        pull_ms, remove_ms = cycle(stub, pushed.reference)
                        if n >= args.warmup:
                            times[name][0].append(pull_ms)
                            times[name][1].append(remove_ms)
        crid_pull = statistics.median(times["crid"][0])
        ctrd_pull = statistics.median(times["containerd"][0])
        result = {
            "image": pushed.reference,
            "layer_bytes": size,
            "runs": args.runs,
            "crid_pull_ms": summary(times["crid"][0]),
            "containerd_pull_ms": summary(times["containerd"][0]),
            "crid_remove_ms": summary(times["crid"][1]),
            "containerd_remove_ms": summary(times["containerd"][1]),
            "pull_ratio_crid_over_containerd": round(crid_pull / ctrd_pull, 2),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for key, value in result.items():
                print(f"{key:34} {value}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
