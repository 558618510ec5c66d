"""Benchmark: the ``ociimage pull`` command vs ``skopeo copy`` into an OCI layout.

The bench builds its test image itself, as a real image looks: one layer of many small
files (a few thousand, 1-16 KiB) and several layers of large incompressible files,
each a gzip (level 1) tar, about 130 MB in all. It pushes the image to a private
``docker-registry`` on 127.0.0.1, syncs (the push's writeback is paid by neither),
pulls once with each (not measured: the registry's first reads are paid by neither
either), then alternates the two commands (which goes first
alternates too), each pulling into a fresh layout directory, and reports per tool the
median wall time and the median peak RSS (``ru_maxrss`` of the process, from
``wait4``), and the ratios. Both are whole commands, start-up included, as a user runs
them. Run from the worktree root:

    uv run python bench/ociimage/pull.py --runs 5
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

from ociimage import OCILayout
from ociimage.testing import LocalRegistry, Platform, build_image, push_image
from ociimage.testing.layers import Entry, Layer, file

MTIME = 1704067200
TIME = "/usr/bin/time"  # GNU time (Debian: apt-get install time)


def make_layer(entries: list[Entry]) -> Layer:
    """A gzip (level 1) tar layer of ``entries`` (files only, parent directories added)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for entry in entries:
            parts = entry.path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    tar.addfile(info)
            info = tarfile.TarInfo(entry.path)
            info.size, info.mode, info.mtime = len(entry.data), 0o644, MTIME
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
    """One layer of ``small_files`` small files, ``big_layers`` of 8 MiB files."""
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


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Run ``argv`` to completion; its wall time (s), peak RSS (KiB) and CPU time (s).

    The peak RSS comes from GNU time, whose small process forks the command: a
    process forked from this one would carry this one's (image-sized) RSS into its
    ``ru_maxrss`` even after exec.
    """
    started = time.perf_counter()
    done = subprocess.run(
        [TIME, "-f", "%M %U %S", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=1800,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    rss, user, system = done.stderr.strip().splitlines()[-1].split()
    return elapsed, int(rss), float(user) + float(system)


def ociimage_argv(reference: str, host: str, dest: Path, policy: Path) -> list[str]:
    ociimage = Path(sys.executable).with_name("ociimage")
    return [str(ociimage), "pull", "--quiet", "--policy", str(policy),
            "--insecure-registry", host, reference, str(dest)]  # fmt: skip


def skopeo_argv(reference: str, dest: Path, policy: Path) -> list[str]:
    return ["skopeo", "--policy", str(policy), "copy", "--quiet", "--src-tls-verify=false",
            f"docker://{reference}", f"oci:{dest}:{reference}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small-files", type=int, default=3000)
    parser.add_argument("--big-layers", type=int, default=4)
    parser.add_argument("--big-mb", type=int, default=24)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is not installed (Debian: apt-get install skopeo)")
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} is missing (Debian: apt-get install time)")

    work = Path(tempfile.mkdtemp(prefix="ociimage-bench-"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work)}
    try:
        with LocalRegistry(workdir=work / "registry") as registry:
            layers = make_layers(args.small_files, args.big_layers, args.big_mb)
            image = build_image("bench/big", "v1", layers, platform=Platform("linux", "amd64"))
            pushed = push_image(registry, image)
            # the push's 130 MB (the registry's files) would otherwise be written back
            # while the first measured pulls run, slowing whichever runs then
            os.sync()
            total = sum(layer.size for layer in layers)
            layer_count = len(layers)
            policy = work / "policy.json"
            policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
            del layers, image  # the children's peak RSS must not include them
            runs: dict[str, list[tuple[float, int, float]]] = {"ociimage": [], "skopeo": []}

            def pull_once(tool: str, run: int) -> tuple[float, int, float]:
                dest = work / f"{tool}-{run}"
                if tool == "ociimage":
                    argv = ociimage_argv(pushed.reference, registry.host, dest, policy)
                else:
                    argv = skopeo_argv(pushed.reference, dest, policy)
                measured = run_measured(argv, env)
                if tool == "ociimage":
                    found = OCILayout(dest).find(pushed.reference).digest
                    assert found == pushed.manifest_digest
                shutil.rmtree(dest)
                return measured

            # one pull each first, not measured: the registry's first reads of the blobs
            # (and its caches) are then paid by neither side
            pull_once("ociimage", -1)
            pull_once("skopeo", -1)
            for run in range(args.runs):
                # alternate which goes first: the one after the other's rmtree pays for
                # the freed page cache as often as the other does
                order = ("ociimage", "skopeo") if run % 2 == 0 else ("skopeo", "ociimage")
                for tool in order:
                    runs[tool].append(pull_once(tool, run))

        def median(tool: str, field: int) -> float:
            return statistics.median(r[field] for r in runs[tool])

        ours_s, theirs_s = median("ociimage", 0), median("skopeo", 0)
        ours_rss, theirs_rss = median("ociimage", 1), median("skopeo", 1)
        ours_cpu, theirs_cpu = median("ociimage", 2), median("skopeo", 2)
        result = {
            "layers": layer_count,
            "bytes": total,
            "runs": args.runs,
            "ociimage_seconds": [round(r[0], 3) for r in runs["ociimage"]],
            "skopeo_seconds": [round(r[0], 3) for r in runs["skopeo"]],
            # per pull: a pull slowed by the host (see ociimage.layout._WRITE_BYTES) shows
            # here as twice the usual CPU
            "ociimage_cpu_s": [round(r[2], 2) for r in runs["ociimage"]],
            "skopeo_cpu_s": [round(r[2], 2) for r in runs["skopeo"]],
            "ociimage_median_s": round(ours_s, 3),
            "skopeo_median_s": round(theirs_s, 3),
            "time_ratio_ociimage_over_skopeo": round(ours_s / theirs_s, 2),
            "ociimage_cpu_median_s": round(ours_cpu, 3),
            "skopeo_cpu_median_s": round(theirs_cpu, 3),
            "ociimage_peak_rss_mib": round(ours_rss / 1024, 1),
            "skopeo_peak_rss_mib": round(theirs_rss / 1024, 1),
            "rss_ratio_ociimage_over_skopeo": round(ours_rss / theirs_rss, 2),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for key, value in result.items():
                print(f"{key:34} {value}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
