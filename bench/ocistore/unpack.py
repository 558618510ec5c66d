"""Benchmark: unpack a generated multi-layer OCI image with ocistore and with ``umoci unpack``.

    uv run python bench/ocistore/unpack.py [--layers 6] [--files 4000] [--large 3] [--repeat 3]

The image has ``--layers`` gzip layers; each holds ``--files`` small files spread over
directories plus ``--large`` files of ``--large-mib`` MiB (half random, half zeros, so
gzip has work to do). Both tools start from the same OCI layout directory and end with
a root filesystem ready to use: ocistore imports the layout (copying and verifying the
blobs), unpacks the layers (independent layers in parallel) and mounts the overlay;
umoci unpacks into a bundle's rootfs. The median of ``--repeat`` runs is reported with
the ratio umoci/ocistore (above 1 means ocistore is faster).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from ocistore import Store


def _layer(index: int, files: int, large: int, large_mib: int) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for i in range(files):
            d = f"layer{index}/d{i % 64}"
            if d not in dirs:
                dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            data = (f"file {i} of layer {index}\n" * (1 + i % 40)).encode()
            info = tarfile.TarInfo(f"{d}/f{i}.txt")
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        for i in range(large):
            size = large_mib << 20
            data = os.urandom(size // 2) + bytes(size - size // 2)
            info = tarfile.TarInfo(f"layer{index}/big{i}.bin")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), tar_bytes


def _put(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def build_layout(root: Path, layers: int, files: int, large: int, large_mib: int) -> int:
    """Write the OCI layout; returns the uncompressed size."""
    (root / "blobs/sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descs, diff_ids, total = [], [], 0
    for i in range(layers):
        blob, tar_bytes = _layer(i, files, large, large_mib)
        total += len(tar_bytes)
        descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_put(root, blob)}
        )
        diff_ids.append("sha256:" + hashlib.sha256(tar_bytes).hexdigest())
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cdesc = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        **_put(root, json.dumps(config).encode()),
    }
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": cdesc, "layers": descs}  # fmt: skip
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             **_put(root, json.dumps(manifest).encode()),
             "annotations": {"org.opencontainers.image.ref.name": "bench"}}  # fmt: skip
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [mdesc]}))
    return total


def run_ocistore(layout: Path, work: Path, *, durable: bool = True) -> float:
    started = time.perf_counter()
    with Store.open(work / "store", durable=durable) as store:
        (image,) = store.import_layout(layout, names=["bench/image:latest"])
        store.create_container("bench", image.id)
        store.mount_container("bench")
        elapsed = time.perf_counter() - started
        store.remove_container("bench")
    return elapsed


def run_ocistore_nosync(layout: Path, work: Path) -> float:
    return run_ocistore(layout, work, durable=False)


def run_umoci(layout: Path, work: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:bench", str(work / "bundle")],
        check=True, capture_output=True, env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--files", type=int, default=4000, help="small files per layer")
    parser.add_argument("--large", type=int, default=2, help="large files per layer")
    parser.add_argument("--large-mib", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("umoci") is None:
        print("umoci not found (Debian package 'umoci')", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="ocistore-bench-", dir="/var/tmp") as tmp:
        base = Path(tmp)
        size = build_layout(base / "layout", args.layers, args.files, args.large, args.large_mib)
        print(f"image: {args.layers} layers, {args.layers * args.files} small files, "
              f"{args.layers * args.large} x {args.large_mib} MiB files, "
              f"{size / 2**20:.0f} MiB uncompressed")  # fmt: skip
        ours: list[float] = []
        nosync: list[float] = []
        theirs: list[float] = []
        runners = ((run_ocistore, ours), (run_ocistore_nosync, nosync), (run_umoci, theirs))
        for i in range(args.repeat):
            for runner, times in runners:
                work = base / f"run-{runner.__name__}-{i}"
                work.mkdir()
                subprocess.run(["sync"], check=True)
                times.append(runner(base / "layout", work))
                shutil.rmtree(work)
        a, b = statistics.median(ours), statistics.median(theirs)
        c = statistics.median(nosync)
        print(f"ocistore (import + unpack + mount): {a:.2f} s  runs={[round(t, 2) for t in ours]}")
        print(
            f"  without syncfs:                   {c:.2f} s  runs={[round(t, 2) for t in nosync]}"
        )
        print(
            f"umoci unpack:                       {b:.2f} s  runs={[round(t, 2) for t in theirs]}"
        )
        print(
            f"ratio umoci/ocistore: {b / a:.2f} ({'ocistore faster' if a < b else 'umoci faster'})"
        )
        print(f"ratio umoci/ocistore without syncfs: {b / c:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
