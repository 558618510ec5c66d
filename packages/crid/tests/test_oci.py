"""crid.oci against the real binaries: conmon creates with runc, runc starts/kills/deletes.

Bundles are made by ``runc spec`` over a busybox root filesystem in tmp_path; each
container gets its own cgroup parent, removed from every hierarchy afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crid.errors import ConmonError, ContainerNotFoundError, RuntimeTimeoutError
from crid.oci import Conmon, ConmonOptions, OCIRuntime

pytestmark = [pytest.mark.root, pytest.mark.binaries("runc", "conmon", "/bin/busybox")]

APPLETS = ("sh", "echo", "sleep", "cat", "true")


def make_bundle(path: Path, args: list[str], cgroup: str) -> Path:
    rootfs = path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    subprocess.run(["runc", "spec"], cwd=path, check=True)
    config = json.loads((path / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["linux"]["cgroupsPath"] = cgroup
    (path / "config.json").write_text(json.dumps(config))
    return path


def remove_cgroup(parent: str) -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        target = hierarchy / parent.strip("/")
        if target.is_dir():
            for child in sorted(target.rglob("*"), reverse=True):
                if child.is_dir():
                    child.rmdir()
            target.rmdir()


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    parent = f"crid-test-{secrets.token_hex(4)}"
    yield parent
    remove_cgroup(parent)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[OCIRuntime]:
    rt = OCIRuntime(
        name="runc", binary=Path(shutil.which("runc") or "runc"), root=tmp_path / "runc"
    )
    yield rt
    if rt.root.is_dir():
        for entry in rt.root.iterdir():
            await rt.delete(entry.name, force=True)


@pytest.fixture
def conmon(runtime: OCIRuntime) -> Conmon:
    return Conmon(binary=Path(shutil.which("conmon") or "conmon"), runtime=runtime)


def options(tmp_path: Path, bundle: Path, cid: str) -> ConmonOptions:
    return ConmonOptions(
        container_id=cid,
        name=f"k8s_{cid}",
        bundle=bundle,
        log_path=tmp_path / "logs" / f"{cid}.log",
        exit_dir=tmp_path / "exits",
        socket_dir=tmp_path / "attach",
    )


async def wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)
    return path.read_text()


def cid() -> str:
    return secrets.token_hex(32)


async def test_create_start_log_and_exit_code(
    tmp_path: Path, runtime: OCIRuntime, conmon: Conmon, cgroup_parent: str
) -> None:
    container = cid()
    bundle = make_bundle(
        tmp_path / "b",
        ["sh", "-c", "echo hello; echo oops >&2; echo -n partial; exit 3"],
        f"/{cgroup_parent}/{container[:12]}",
    )
    opts = options(tmp_path, bundle, container)
    created = await conmon.create(opts)
    state = await runtime.state(container)
    assert state.status == "created"
    assert state.pid == created.pid > 0
    os.kill(created.conmon_pid, 0)  # conmon is alive and watching
    await runtime.start(container)
    assert await wait_for(opts.exit_file) == "3"
    lines = opts.log_path.read_text().splitlines()
    streams = [(line.split(" ")[1], line.split(" ")[2], line.split(" ", 3)[3]) for line in lines]
    assert ("stdout", "F", "hello") in streams
    assert ("stderr", "F", "oops") in streams
    assert ("stdout", "P", "partial") in streams
    assert (await runtime.state(container)).status == "stopped"
    await runtime.delete(container)
    with pytest.raises(ContainerNotFoundError):
        await runtime.state(container)


async def test_kill_records_signal_exit(
    tmp_path: Path, runtime: OCIRuntime, conmon: Conmon, cgroup_parent: str
) -> None:
    container = cid()
    bundle = make_bundle(tmp_path / "b", ["sleep", "60"], f"/{cgroup_parent}/{container[:12]}")
    opts = options(tmp_path, bundle, container)
    await conmon.create(opts)
    await runtime.start(container)
    assert (await runtime.state(container)).status == "running"
    await runtime.kill(container, 9)
    assert await wait_for(opts.exit_file) == "137"
    await runtime.delete(container)


async def test_update_changes_the_cgroup(
    tmp_path: Path, runtime: OCIRuntime, conmon: Conmon, cgroup_parent: str
) -> None:
    container = cid()
    leaf = f"/{cgroup_parent}/{container[:12]}"
    bundle = make_bundle(tmp_path / "b", ["sleep", "60"], leaf)
    await conmon.create(options(tmp_path, bundle, container))
    await runtime.update(container, {"pids": {"limit": 42}})
    assert Path(f"/sys/fs/cgroup/pids{leaf}/pids.max").read_text().strip() == "42"
    await runtime.delete(container, force=True)


async def test_failed_create_reports_runtime_message_and_leaves_nothing(
    tmp_path: Path, runtime: OCIRuntime, conmon: Conmon, cgroup_parent: str
) -> None:
    container = cid()
    bundle = make_bundle(tmp_path / "b", ["true"], f"/{cgroup_parent}/{container[:12]}")
    config: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    config["process"]["cwd"] = "relative/dir"  # the runtime refuses a relative cwd
    (bundle / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConmonError, match=r"failed: runc create failed: Cwd must be an absolute"):
        await conmon.create(options(tmp_path, bundle, container))
    with pytest.raises(ContainerNotFoundError):
        await runtime.state(container)


@pytest.mark.parametrize("timeout", [0.001, 0.01, 0.02, 0.04])
async def test_timeout_kills_conmon_and_deletes_the_container(
    tmp_path: Path, runtime: OCIRuntime, conmon: Conmon, cgroup_parent: str, timeout: float
) -> None:
    container = cid()
    bundle = make_bundle(tmp_path / "b", ["sleep", "60"], f"/{cgroup_parent}/{container[:12]}")
    opts = options(tmp_path, bundle, container)
    try:
        await conmon.create(opts, timeout=timeout)
    except RuntimeTimeoutError as err:
        assert "timed out" in str(err) and container in str(err)
    else:  # fast enough to finish: then it must be a whole container
        assert (await runtime.state(container)).status == "created"
        await runtime.delete(container, force=True)
    await asyncio.sleep(0.3)  # a racing runtime create must have been undone, too
    with pytest.raises(ContainerNotFoundError):
        await runtime.state(container)
    leftover = subprocess.run(["pgrep", "-f", f"--cid {container}"], capture_output=True)
    assert leftover.stdout == b""


async def test_unknown_container(runtime: OCIRuntime) -> None:
    with pytest.raises(ContainerNotFoundError, match="does not exist"):
        await runtime.state("nope")
    await runtime.delete("nope")  # idempotent
    with pytest.raises(ContainerNotFoundError):
        await runtime.kill("nope", 15)


async def test_conmon_exiting_without_a_report_is_explained_by_its_stderr(
    tmp_path: Path, runtime: OCIRuntime, cgroup_parent: str
) -> None:
    container = cid()
    bundle = make_bundle(tmp_path / "b", ["true"], f"/{cgroup_parent}/{container[:12]}")
    broken = Conmon(
        binary=Path(shutil.which("conmon") or "conmon"), runtime=runtime, log_level="bogus"
    )
    with pytest.raises(ConmonError, match=r"without reporting a pid: .*No such log level bogus"):
        await broken.create(options(tmp_path, bundle, container))


@pytest.mark.parametrize("when", ["before the start byte", "after the start byte"])
async def test_a_failing_hook_leaves_nothing_running(
    tmp_path: Path, runtime: OCIRuntime, conmon: Conmon, cgroup_parent: str, when: str
) -> None:
    """The hook may send the start byte itself (from a worker thread); failing after
    that, the runtime's create is undone, as it is when it fails before."""
    container = cid()
    bundle = make_bundle(tmp_path / "b", ["sleep", "60"], f"/{cgroup_parent}/{container[:12]}")

    async def hook(start: Callable[[], None]) -> None:
        if when == "after the start byte":
            await asyncio.to_thread(start)
            await asyncio.sleep(0.05)  # the runtime's create is under way or done
        raise OSError("the caller's preparation failed")

    with pytest.raises(OSError, match="preparation failed"):
        await conmon.create(options(tmp_path, bundle, container), before_start=hook)
    with pytest.raises(ContainerNotFoundError):
        await runtime.state(container)
    leftover = subprocess.run(["pgrep", "-f", f"--cid {container}"], capture_output=True)
    assert leftover.stdout == b""
