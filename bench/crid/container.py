"""Container start and teardown through crid.oci (conmon + runc) versus bare runc.

Side by side in one run, on the same busybox bundle:
- floor: ``runc create`` + ``runc start`` from a shell, then ``runc kill -9`` + ``delete``;
- crid.oci: conmon creating with runc (sync/start pipes), ``start``; then kill, wait for
  conmon's exit file, delete.
Prints medians and the ratio. Run as root: ``uv run python bench/crid/container.py [-n N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crid.oci import Conmon, ConmonOptions, OCIRuntime

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CONMON = shutil.which("conmon") or "/usr/bin/conmon"
PARENT = f"crid-bench-{secrets.token_hex(3)}"


def bundle(path: Path) -> Path:
    rootfs = path / "rootfs" / "bin"
    rootfs.mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "busybox")
    (rootfs / "sleep").symlink_to("busybox")
    subprocess.run([RUNC, "spec"], cwd=path, check=True)
    config = json.loads((path / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sleep", "600"]
    (path / "config.json").write_text(json.dumps(config))
    return path


def set_cgroup(path: Path, container_id: str) -> None:
    config = json.loads((path / "config.json").read_text())
    config["linux"]["cgroupsPath"] = f"/{PARENT}/{container_id[:12]}"
    (path / "config.json").write_text(json.dumps(config))


def floor_cycle(path: Path, root: Path) -> tuple[float, float]:
    cid = secrets.token_hex(32)
    set_cgroup(path, cid)
    base = [RUNC, f"--root={root}"]
    t0 = time.perf_counter()
    subprocess.run(
        [*base, "create", "--bundle", str(path), cid],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run([*base, "start", cid], check=True)
    t1 = time.perf_counter()
    subprocess.run([*base, "kill", cid, "9"], check=True)
    while (
        json.loads(subprocess.run([*base, "state", cid], capture_output=True).stdout)["status"]
        != "stopped"
    ):
        time.sleep(0.001)
    subprocess.run([*base, "delete", cid], check=True)
    return (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


async def crid_cycle(path: Path, conmon: Conmon, work: Path) -> tuple[float, float]:
    cid = secrets.token_hex(32)
    set_cgroup(path, cid)
    options = ConmonOptions(
        container_id=cid,
        name=cid,
        bundle=path,
        log_path=work / "logs" / cid,
        exit_dir=work / "exits",
        socket_dir=work / "attach",
    )
    t0 = time.perf_counter()
    await conmon.create(options)
    await conmon.runtime.start(cid)
    t1 = time.perf_counter()
    await conmon.runtime.kill(cid, 9)
    while not options.exit_file.exists():
        await asyncio.sleep(0.001)
    await conmon.runtime.delete(cid)
    return (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000


def remove_cgroups() -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        target = hierarchy / PARENT
        if target.is_dir():
            for child in sorted(target.rglob("*"), reverse=True):
                if child.is_dir():
                    child.rmdir()
            target.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = bundle(work / "bundle")
        runtime = OCIRuntime(name="runc", binary=Path(RUNC), root=work / "runc-crid")
        conmon = Conmon(binary=Path(CONMON), runtime=runtime)
        floor, ours = [], []
        try:
            for _ in range(args.n):  # interleaved, so both see the same machine load
                floor.append(floor_cycle(path, work / "runc-floor"))
                ours.append(asyncio.run(crid_cycle(path, conmon, work)))
        finally:
            remove_cgroups()

    def med(samples: list[tuple[float, float]], i: int) -> float:
        return statistics.median(s[i] for s in samples)

    print(f"{'':<28}{'start ms':>10}{'teardown ms':>13}")
    print(f"{'bare runc (floor)':<28}{med(floor, 0):>10.1f}{med(floor, 1):>13.1f}")
    print(f"{'crid.oci (conmon + runc)':<28}{med(ours, 0):>10.1f}{med(ours, 1):>13.1f}")
    print(
        f"{'ratio':<28}{med(ours, 0) / med(floor, 0):>10.2f}{med(ours, 1) / med(floor, 1):>13.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
