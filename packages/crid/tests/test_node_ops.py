"""``crid status``, ``crid check`` and ``crid wipe`` as an operator runs them: real
processes, a real daemon, real containers, and storage damaged on disk."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import msgspec
import pytest

from crid.config import Config, load_config
from crid.state import Container, ContainerMeta, ContainerState, StateDB
from ociimage.testing import busybox_image
from ocispec.image import Manifest
from ocistore import Store

from ._node_support import (
    IMAGE,
    crid,
    load_busybox,
    run_pod_with_sleeper,
    start_serve,
    stop_serve,
)
from .conftest import make_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "/usr/bin/busybox"),
]


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path) + "/"
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]


def _runc_list(root: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        ["runc", "--root", str(root), "list", "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout or "null") or [])


def _processes_mentioning(path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                found.append(cmdline)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_status_check_and_wipe_around_a_running_daemon(tmp_path: Path) -> None:
    config_file, config = make_config(tmp_path)
    load_busybox(Path(config.crid.root) / "storage")
    socket_path = Path(config.crid.api.listen)
    args = ("--config", str(config_file))
    proc = start_serve(config_file, socket_path)
    try:
        pod_id, container_id = run_pod_with_sleeper(socket_path, tmp_path / "logs", "sleeper")

        info = crid("status", "info", *args)
        assert info.returncode == 0, info.stderr
        assert "cgroup driver: cgroupfs" in info.stdout
        assert f"storage root: {config.crid.root}" in info.stdout
        assert "condition RuntimeReady: true" in info.stdout

        shown = crid("status", "config", *args)
        assert shown.returncode == 0, shown.stderr
        assert msgspec.convert(tomllib.loads(shown.stdout), Config) == config

        listed = crid("status", "containers", *args)
        assert listed.returncode == 0, listed.stderr
        row = next(
            line for line in listed.stdout.splitlines() if line.startswith(container_id[:13])
        )
        assert "sleeper" in row and "running" in row and "ns/sleeper" in row and IMAGE in row
        assert "1 container(s) in 1 pod(s)" in listed.stdout

        one = crid("status", "containers", "--id", container_id[:12], *args)
        assert one.returncode == 0, one.stderr
        detail = json.loads(one.stdout)
        assert detail["id"] == container_id and detail["pod_sandbox_id"] == pod_id
        assert detail["state"] == "running" and detail["pid"] > 0
        pid = int(detail["pid"])

        missing = crid("status", "containers", "--id", "nosuchcontainer", *args)
        assert missing.returncode == 1
        assert "NOT_FOUND" in missing.stderr

        # Offline commands refuse while the daemon runs, changing nothing.
        for command in (("check",), ("check", "--repair"), ("wipe",), ("wipe", "--force")):
            refused = crid(*command, *args)
            assert refused.returncode == 3, (command, refused.stdout, refused.stderr)
            assert "crid is running" in refused.stderr
        assert _alive(pid)
    finally:
        assert stop_serve(proc) == 0

    down = crid("status", "info", *args)
    assert down.returncode == 1
    assert str(socket_path) in down.stderr

    # The container outlives the daemon: a plain wipe refuses, naming it.
    assert _alive(pid)
    refused = crid("wipe", *args)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"running: container {container_id}" in refused.stdout
    assert _alive(pid)
    assert _mounts_under(tmp_path)

    wiped = crid("wipe", "--force", *args)
    assert wiped.returncode == 0, wiped.stdout + wiped.stderr
    assert f"killed: container {container_id}" in wiped.stdout
    assert "removed 1 pod(s), 1 container(s), 1 image(s)" in wiped.stdout
    assert not _alive(pid)
    assert _processes_mentioning(tmp_path) == []  # the pod's PID namespace holder too
    assert _runc_list(Path(config.crid.runroot) / "runtimes" / "runc") == []
    assert _mounts_under(tmp_path) == []
    with Store.open(Path(config.crid.root) / "storage") as store:
        assert store.list_images() == [] and store.list_containers() == []
    state = StateDB(Path(config.crid.root) / "state.db")
    try:
        assert state.containers() == [] and state.sandboxes() == []
    finally:
        state.close()
    assert crid("check", *args).returncode == 0

    # The node serves again after a wipe.
    proc = start_serve(config_file, socket_path)
    assert stop_serve(proc) == 0


def _damage(config: Config) -> dict[str, str]:
    """Break the store and the records the ways a crash or a bad disk does."""
    storage = Path(config.crid.root) / "storage"
    load_busybox(storage)
    built = busybox_image()
    with Store.open(storage) as store:
        image = store.image(IMAGE)
        store.create_container("f" * 64, image.id)  # a root filesystem no record owns
        layer_blob = Manifest.from_json(store.blobs.read(image.manifest_digest)).layers[0].digest
    blob_path = storage / "blobs" / "sha256" / layer_blob.split(":", 1)[1]
    with blob_path.open("ab") as blob:  # bit rot: the content no longer has its digest
        blob.write(b"rot")
    (storage / "layers" / ("d" * 64)).mkdir()  # a layer renamed in, never recorded
    (storage / "tmp" / "pull-leftover").write_bytes(b"half a blob")
    state = StateDB(Path(config.crid.root) / "state.db")
    dangling = "e" * 64
    try:  # a record whose root filesystem (and pod) are gone
        state.put_container(
            Container(
                id=dangling, name="gone", sandbox_id="a" * 64,
                meta=ContainerMeta(name="gone"), state=ContainerState.EXITED, created_at=1,
                image=IMAGE, image_id=built.config.digest,
            )
        )  # fmt: skip
    finally:
        state.close()
    return {"blob": layer_blob, "dangling": dangling}


def test_check_finds_damage_without_changing_it_then_repairs_it(tmp_path: Path) -> None:
    config_file, config = make_config(tmp_path)
    damage = _damage(config)
    storage = Path(config.crid.root) / "storage"
    args = ("--config", str(config_file))

    found = crid("check", *args)
    assert found.returncode == 1, found.stdout + found.stderr
    lines = found.stdout.splitlines()
    for expected in (
        "found: 1 corrupt blobs",
        "found: 1 dangling layer directories",
        "found: 1 leftover temporary entries",
        f"found: container record {damage['dangling']}: its root filesystem is not in the store",
        "found: 1 root filesystems no record owns",
    ):
        assert expected in lines, found.stdout
    assert lines[-1].startswith("storage is damaged")
    # A check alone changes nothing.
    assert (storage / "layers" / ("d" * 64)).is_dir()
    assert (storage / "tmp" / "pull-leftover").exists()
    assert crid("check", *args).stdout == found.stdout

    repaired = crid("check", "--repair", *args)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired: 1 corrupt blobs" in repaired.stdout
    assert repaired.stdout.splitlines()[-1] == "storage repaired"

    again = crid("check", *args)
    assert again.returncode == 0, again.stdout
    assert again.stdout.splitlines() == ["storage is consistent"]
    with Store.open(storage) as store:
        assert not store.has_blob(damage["blob"])
        assert store.list_containers() == []
        assert [list(image.names) for image in store.list_images()] == [[IMAGE]]
    state = StateDB(Path(config.crid.root) / "state.db")
    try:
        assert state.containers() == []
    finally:
        state.close()


def test_check_of_a_fresh_node_is_clean(tmp_path: Path) -> None:
    config_file, _ = make_config(tmp_path)
    done = crid("check", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["image store: none yet", "storage is consistent"]


def test_offline_commands_exit_2_on_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "crid.toml"
    bad.write_text("[crid]\nroot = 5\n")
    for command in ("check", "wipe"):
        done = crid(command, "--config", str(bad))
        assert done.returncode == 2
        assert "crid.root" in done.stderr
    assert load_config  # the same loader as serve's


async def test_a_cgroup_driver_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    import grpc

    from crid._cri.v1 import api_pb2, api_pb2_grpc
    from crid.server import Daemon

    from ._node_support import host_network_pod

    _, config = make_config(tmp_path)
    daemon = Daemon(config)
    await daemon.start()
    try:
        async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
            stub = api_pb2_grpc.RuntimeServiceStub(channel)
            pod = host_network_pod("mismatch", tmp_path / "logs")
            for parent in ("kubepods-besteffort-pod1.slice", "/kubepods.slice/x.slice"):
                pod.linux.cgroup_parent = parent
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert parent in str(info.value.details())
                assert "cgroupDriver" in str(info.value.details())
            listed = await stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())
            assert list(listed.items) == []
    finally:
        await daemon.stop(grace=0)
