"""Benchmark: ociimage pull vs ``skopeo copy`` from a loopback registry into an OCI layout.

Generates a multi-layer image (incompressible random files, gzip level 1), pushes it to
a private ``docker-registry`` on 127.0.0.1, then alternates ociimage and skopeo pulls
into fresh layout directories and reports the median wall times and their ratio
(> 1 means ociimage is faster). Run from the worktree root:

    uv run python bench/ociimage/pull.py --layers 6 --layer-mb 50 --runs 3
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
import tarfile
import tempfile
import time
from pathlib import Path

from ociimage import OCILayout, OCILayoutSink, RegistriesConfig, pull_sync
from ociimage.testing import LocalRegistry, Platform, build_image, push_image
from ociimage.testing.layers import Layer, file


def make_layer(index: int, size: int) -> Layer:
    """One layer holding a single random file of ``size`` bytes."""
    data = os.urandom(size)
    entry = file(f"data/blob-{index}.bin", data)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(entry.path)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 1704067200
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return Layer(
        data=blob,
        digest="sha256:" + hashlib.sha256(blob).hexdigest(),
        size=len(blob),
        diff_id="sha256:" + hashlib.sha256(tar_bytes).hexdigest(),
        entries=(entry,),
    )


def time_ociimage(reference: str, host: str, dest: Path, concurrency: int) -> float:
    conf = RegistriesConfig().with_insecure([host])
    started = time.perf_counter()
    pull_sync(
        reference,
        OCILayoutSink(dest),
        registries=conf,
        max_concurrent_downloads=concurrency,
    )
    return time.perf_counter() - started


def time_skopeo(reference: str, dest: Path, policy: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "skopeo",
            "--policy",
            str(policy),
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            f"docker://{reference}",
            f"oci:{dest}:{reference}",
        ],
        check=True,
        timeout=1800,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest.parent)},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--layer-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is not installed (Debian: apt-get install skopeo)")

    work = Path(tempfile.mkdtemp(prefix="ociimage-bench-"))
    try:
        with LocalRegistry(workdir=work / "registry") as registry:
            layers = [make_layer(i, args.layer_mb << 20) for i in range(args.layers)]
            image = build_image("bench/big", "v1", layers, platform=Platform("linux", "amd64"))
            pushed = push_image(registry, image)
            total = sum(layer.size for layer in layers)
            policy = work / "policy.json"
            policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
            ours: list[float] = []
            theirs: list[float] = []
            for run in range(args.runs):
                dest = work / f"ociimage-{run}"
                ours.append(time_ociimage(pushed.reference, registry.host, dest, args.concurrency))
                assert OCILayout(dest).find(pushed.reference).digest == pushed.manifest_digest
                shutil.rmtree(dest)
                dest = work / f"skopeo-{run}"
                theirs.append(time_skopeo(pushed.reference, dest, policy))
                shutil.rmtree(dest)
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        result = {
            "layers": args.layers,
            "bytes": total,
            "runs": args.runs,
            "ociimage_seconds": ours,
            "skopeo_seconds": theirs,
            "ociimage_median_s": round(ours_median, 3),
            "skopeo_median_s": round(theirs_median, 3),
            "ociimage_mb_per_s": round(total / ours_median / 1e6, 1),
            "skopeo_mb_per_s": round(total / theirs_median / 1e6, 1),
            "speed_ratio_skopeo_over_ociimage": round(theirs_median / ours_median, 2),
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
