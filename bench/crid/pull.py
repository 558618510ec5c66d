"""Benchmark: CRI PullImage through crid vs ``skopeo copy`` + ``umoci unpack``.

Generates a multi-layer image (one layer of a few thousand small files, the others of
large incompressible files; gzip level 1), pushes it to a private ``docker-registry`` on
127.0.0.1, and starts ``crid serve`` on a socket under a temp dir. Each run then
times

* crid: ``PullImage`` over the CRI socket until the image is stored *and unpacked*
  into overlay layers (then ``RemoveImage``, so every run downloads everything);
* the reference: ``skopeo copy docker://... oci:DIR`` followed by
  ``umoci unpack --image DIR:tag BUNDLE`` (what a runtime without containers-storage
  must do to get a root file system).

Runs alternate between the two; the medians and their ratio (> 1: crid is faster)
are printed. Run as root from the worktree root:

    uv run python bench/crid/pull.py --runs 3
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from ociimage.testing import LocalRegistry, Platform, build_image, push_image
from ociimage.testing.layers import Entry, Layer, file

MTIME = 1704067200


def make_layer(entries: list[Entry]) -> Layer:
    """A gzip (level 1) tar layer of ``entries`` (files only, parents implied)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for entry in entries:
            parent = entry.path.rsplit("/", 1)[0]
            parts = parent.split("/")
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = MTIME
                    tar.addfile(info)
            info = tarfile.TarInfo(entry.path)
            info.size = len(entry.data)
            info.mode = 0o644
            info.mtime = MTIME
            tar.addfile(info, io.BytesIO(entry.data))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return Layer(
        data=blob,
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        diff_id="sha256:" + hashlib.sha256(tar_bytes).hexdigest(),
        entries=tuple(entries),
    )


def make_layers(small_files: int, big_layers: int, big_mb: int) -> list[Layer]:
    rng = random.Random(7)
    small = [
        file(f"usr/share/bench/{i // 100:03d}/f{i:05d}", os.urandom(rng.randint(1024, 16384)))
        for i in range(small_files)
    ]
    layers = [make_layer(small)]
    for n in range(big_layers):
        files = [
            file(f"opt/bench{n}/blob-{k}.bin", os.urandom(8 << 20)) for k in range(big_mb // 8)
        ]
        layers.append(make_layer(files))
    return layers


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
        f'[crid.nri]\nsocket_path = "{work}/run/nri.sock"\n'
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
    deadline = time.monotonic() + 30
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("crid did not start")
        time.sleep(0.01)
    return proc, sock


def time_crid(stub: api_pb2_grpc.ImageServiceStub, reference: str) -> float:
    started = time.perf_counter()
    reply = stub.PullImage(
        api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)), timeout=1800
    )
    elapsed = time.perf_counter() - started
    stub.RemoveImage(
        api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=reply.image_ref)), timeout=600
    )
    return elapsed


def time_skopeo_umoci(reference: str, work: Path, policy: Path) -> float:
    layout, bundle = work / "layout", work / "bundle"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work)}
    started = time.perf_counter()
    subprocess.run(
        ["skopeo", "--policy", str(policy), "copy", "--quiet", "--src-tls-verify=false",
         f"docker://{reference}", f"oci:{layout}:bench"],
        check=True, timeout=1800, env=env,
    )  # fmt: skip
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:bench", str(bundle)],
        check=True, timeout=1800, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    shutil.rmtree(layout)
    shutil.rmtree(bundle)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small-files", type=int, default=4000)
    parser.add_argument("--big-layers", type=int, default=4)
    parser.add_argument("--big-mb", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    for tool in ("skopeo", "umoci"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install {tool})")
    work = Path(tempfile.mkdtemp(prefix="crid-pull-bench-"))
    try:
        with LocalRegistry(workdir=work / "registry") as registry:
            layers = make_layers(args.small_files, args.big_layers, args.big_mb)
            image = build_image("bench/pull", "v1", layers, platform=Platform("linux", "amd64"))
            pushed = push_image(registry, image)
            compressed = sum(layer.size for layer in layers)
            proc, sock = start_crid(work / "crid", registry.host)
            ours: list[float] = []
            theirs: list[float] = []
            try:
                with grpc.insecure_channel(f"unix://{sock}") as channel:
                    stub = api_pb2_grpc.ImageServiceStub(channel)
                    for _ in range(args.runs):
                        ours.append(time_crid(stub, pushed.reference))
                        theirs.append(
                            time_skopeo_umoci(pushed.reference, work, work / "crid" / "policy.json")
                        )
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        result = {
            "layers": len(layers),
            "files": args.small_files + args.big_layers * (args.big_mb // 8),
            "compressed_bytes": compressed,
            "runs": args.runs,
            "crid_seconds": [round(s, 3) for s in ours],
            "skopeo_umoci_seconds": [round(s, 3) for s in theirs],
            "crid_median_s": round(ours_median, 3),
            "skopeo_umoci_median_s": round(theirs_median, 3),
            "speed_ratio_skopeo_umoci_over_crid": round(theirs_median / ours_median, 2),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for key, value in result.items():
                print(f"{key:36} {value}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
