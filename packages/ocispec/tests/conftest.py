"""Fixtures for running generated configs with the real runc on a busybox rootfs.

Every container gets a unique id, a ``--root`` state directory in tmp_path and a
cgroupsPath ``/crid-test-<random>/<id>``; teardown deletes the containers and removes
the cgroup directories from every hierarchy (runc removes only the leaf).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocispec.generate import ALL_CAPABILITIES, ContainerOptions, GeneratedSpec, HostInfo
from ocispec.runtime import Spec

RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
APPLETS = (
    "sh",
    "cat",
    "id",
    "env",
    "pwd",
    "ls",
    "echo",
    "grep",
    "hostname",
    "touch",
    "mount",
    "umount",
    "unshare",
    "sleep",
    "head",
    "tr",
    "wc",
    "readlink",
    "stat",
    "mkdir",
    "test",
    "true",
    "false",
    "ps",
    "nsenter",
    "dd",
    "rm",
)

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
app:x:1000:1000:App User:/home/app:/bin/sh
other:x:1001:1001::/home/other:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
wheel:x:10:app,other
audio:x:29:app
app:x:1000:
other:x:1001:
"""


def make_busybox_rootfs(root: Path) -> Path:
    """A minimal rootfs: static busybox with applet links, passwd/group, /tmp, /home/app."""
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "home/app", "root", "mnt", "usr"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    os.chown(root / "home" / "app", 1000, 1000)
    return root


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Runc:
    """Runs specs with runc in a private state dir; remembers what to clean up."""

    base: Path
    group: str = field(default_factory=lambda: f"crid-test-{secrets.token_hex(4)}")
    ids: list[str] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.base / "runc-state"

    def new_id(self) -> str:
        cid = f"ocispec-{secrets.token_hex(6)}"
        self.ids.append(cid)
        return cid

    def cgroups_path(self, cid: str) -> str:
        return f"/{self.group}/{cid}"

    def options(self, rootfs: Path, cid: str, **kw: object) -> ContainerOptions:
        kw.setdefault("cgroups_path", self.cgroups_path(cid))
        return ContainerOptions(rootfs=str(rootfs), **kw)  # type: ignore[arg-type]

    def bundle(self, spec: Spec | GeneratedSpec, cid: str) -> Path:
        bundle = self.base / "bundles" / cid
        bundle.mkdir(parents=True)
        s = spec.spec if isinstance(spec, GeneratedSpec) else spec
        (bundle / "config.json").write_text(s.to_json(indent=2))
        return bundle

    def run(self, spec: Spec | GeneratedSpec, cid: str, *, timeout: float = 60) -> RunResult:
        bundle = self.bundle(spec, cid)
        out = subprocess.run(
            [RUNC, "--root", str(self.state), "run", "--bundle", str(bundle), cid],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return RunResult(out.returncode, out.stdout, out.stderr)

    def run_detached(self, spec: Spec | GeneratedSpec, cid: str) -> int:
        """Start a container in the background; returns its init pid."""
        bundle = self.bundle(spec, cid)
        log = bundle / "stderr.log"
        with log.open("wb") as err:
            # The container inherits runc's stdio: no pipes, or waiting for EOF never ends.
            done = subprocess.run(
                [RUNC, "--root", str(self.state), "run", "--detach", "--bundle", str(bundle), cid],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=60,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"runc run --detach failed: {log.read_text()}")
        state = subprocess.run(
            [RUNC, "--root", str(self.state), "state", cid],
            capture_output=True,
            text=True,
            check=True,
        )
        from ocispec.runtime import State

        return State.from_json(state.stdout).pid

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run(
                [RUNC, "--root", str(self.state), "delete", "--force", cid],
                capture_output=True,
                timeout=30,
                check=False,
            )
        remove_cgroup_dirs(self.group)


def remove_cgroup_dirs(group: str) -> None:
    """Remove /sys/fs/cgroup/<hierarchy>/<group> (and its children) in every hierarchy."""
    base = Path("/sys/fs/cgroup")
    if not base.is_dir():
        return
    for hierarchy in base.iterdir():
        top = hierarchy / group
        if not top.is_dir():
            continue
        for child in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Runc]:
    harness = Runc(base=tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
def world_rootfs() -> Iterator[Path]:
    """A rootfs on a path every uid can traverse (tmp_path is 0700), for user namespaces."""
    base = Path(tempfile.mkdtemp(prefix="ocispec-userns-"))
    base.chmod(0o755)
    try:
        yield make_busybox_rootfs(base / "rootfs")
    finally:
        shutil.rmtree(base, ignore_errors=True)


#: A host as the generator's unit tests see it (cgroup v1, no CAP_SYS_RESOURCE).
HOST = HostInfo(
    arch="amd64",
    kernel="6.1.0",
    cgroup_version=1,
    bounding_capabilities=tuple(c for c in ALL_CAPABILITIES if c != "CAP_SYS_RESOURCE"),
    sys_resource=False,
    oom_score_adj=-100,
    hard_rlimits={"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 50000},
)
