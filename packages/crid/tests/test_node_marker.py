"""The clean-shutdown marker: a clean stop writes it; a start without it (after a real
SIGKILL in the middle of a pull or of a container create) checks and repairs storage
before serving."""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import load_config
from ociimage.testing import LocalRegistry, TestImages
from ociimage.testing.faults import Fault, FaultyProxy

from ._images_support import image_config
from ._node_support import (
    crid,
    host_network_pod,
    load_busybox,
    sleeper,
    start_serve,
    stop_serve,
)
from .conftest import make_config

UNCLEAN = "crid did not stop cleanly"
CHECKED = "storage check after an unclean stop"


def _wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _log(config_file: Path) -> str:
    return (config_file.parent / "crid.stderr").read_text()


@pytest.mark.binaries("runc", "conmon")
def test_a_clean_stop_leaves_the_marker_and_the_next_start_skips_the_check(
    tmp_path: Path,
) -> None:
    config_file, _ = make_config(tmp_path)
    text = config_file.read_text().replace(
        "[crid]\n", f'[crid]\nclean_shutdown_file = "{tmp_path}/state/clean"\n', 1
    )
    config_file.write_text(text)
    config = load_config(config_file)
    marker = tmp_path / "state" / "clean"
    socket_path = Path(config.crid.api.listen)
    load_busybox(Path(config.crid.root) / "storage")  # storage exists: not a first start

    proc = start_serve(config_file, socket_path)
    assert not marker.exists()  # removed while crid runs: a crash now leaves none
    assert stop_serve(proc) == 0
    assert marker.is_file()
    assert UNCLEAN in _log(config_file)  # storage existed and no marker did yet

    (config_file.parent / "crid.stderr").unlink()
    proc = start_serve(config_file, socket_path)
    assert not marker.exists()
    assert stop_serve(proc) == 0
    assert marker.is_file()
    assert UNCLEAN not in _log(config_file)


def test_the_first_start_of_a_node_needs_no_check(tmp_path: Path) -> None:
    config_file, config = make_config(tmp_path)
    marker = Path(config.crid.root) / "clean.shutdown"
    proc = start_serve(config_file, Path(config.crid.api.listen))
    assert stop_serve(proc) == 0
    assert marker.is_file()
    assert UNCLEAN not in _log(config_file)


@pytest.mark.root
@pytest.mark.binaries("runc", "conmon")
def test_sigkill_in_the_middle_of_a_pull_is_checked_and_repaired_at_start(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    layered = test_images.layered
    with FaultyProxy(registry.url) as proxy:
        stall = proxy.add(Fault(path=layered.layer_digests[-1], stall_after=64, stall_seconds=60))
        config = image_config(tmp_path, [proxy.host])
        config_file = tmp_path / "crid.toml"
        storage = Path(config.crid.root) / "storage"
        socket_path = Path(config.crid.api.listen)
        reference = f"{proxy.host}/{layered.repository}:{layered.tag}"
        proc = start_serve(config_file, socket_path)
        errors: list[BaseException] = []

        def pull() -> None:
            try:
                with grpc.insecure_channel(f"unix://{socket_path}") as channel:
                    api_pb2_grpc.ImageServiceStub(channel).PullImage(
                        api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)),
                        timeout=60,
                    )
            except grpc.RpcError as err:
                errors.append(err)

        puller = threading.Thread(target=pull)
        puller.start()
        try:
            _wait_for(lambda: stall.hits >= 1, "the pull to reach the stalled layer")
            _wait_for(lambda: any((storage / "tmp").iterdir()), "a half-written blob")
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        finally:
            proxy.stalled.set()
            puller.join(timeout=30)
        assert errors, "the pull cannot have finished: crid was killed"
        assert not (Path(config.crid.root) / "clean.shutdown").exists()
        leftovers = sorted(p.name for p in (storage / "tmp").iterdir())
        assert leftovers

        proxy.clear()
        proc = start_serve(config_file, socket_path)
        try:
            log = _log(config_file)
            assert UNCLEAN in log and CHECKED in log
            assert sorted(p.name for p in (storage / "tmp").iterdir()) == []
            with grpc.insecure_channel(f"unix://{socket_path}") as channel:
                images = api_pb2_grpc.ImageServiceStub(channel)
                listed = images.ListImages(api_pb2.ListImagesRequest(), timeout=10).images
                assert [i for i in listed if reference in i.repo_tags] == []
                images.PullImage(
                    api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)),
                    timeout=60,
                )
        finally:
            assert stop_serve(proc) == 0
    checked = crid("check", "--config", str(config_file))
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.splitlines() == ["storage is consistent"]


_SLOW_CREATE = """#!/bin/sh
# runc, except that `create` records its pid and waits: crid is then inside
# CreateContainer for as long as the test wants.
for arg in "$@"; do
  if [ "$arg" = create ]; then
    echo $$ > {flag}.tmp && mv {flag}.tmp {flag}
    exec sleep 600
  fi
done
exec {runc} "$@"
"""


@pytest.mark.root
@pytest.mark.binaries("runc", "conmon", "/usr/bin/busybox")
def test_sigkill_in_the_middle_of_a_container_create_is_checked_and_cleaned(
    tmp_path: Path,
) -> None:
    import shutil

    runc = shutil.which("runc")
    assert runc is not None
    flag = tmp_path / "create-started"
    wrapper = tmp_path / "slow-runc"
    wrapper.write_text(_SLOW_CREATE.format(flag=flag, runc=runc))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    config_file, config = make_config(
        tmp_path, f'[crid.runtime.runtimes.runc]\nruntime_path = "{wrapper}"\n'
    )
    storage = Path(config.crid.root) / "storage"
    load_busybox(storage)
    socket_path = Path(config.crid.api.listen)
    proc = start_serve(config_file, socket_path)
    errors: list[BaseException] = []
    pod = host_network_pod("victim", tmp_path / "logs")
    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        stub = api_pb2_grpc.RuntimeServiceStub(channel)
        pod_id = stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod), timeout=60)

    def create() -> None:
        try:
            with grpc.insecure_channel(f"unix://{socket_path}") as channel:
                api_pb2_grpc.RuntimeServiceStub(channel).CreateContainer(
                    api_pb2.CreateContainerRequest(
                        pod_sandbox_id=pod_id.pod_sandbox_id,
                        config=sleeper("victim"),
                        sandbox_config=pod,
                    ),
                    timeout=60,
                )
        except grpc.RpcError as err:
            errors.append(err)

    creator = threading.Thread(target=create)
    creator.start()
    try:
        _wait_for(flag.exists, "the runtime's create to start")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if flag.exists():
            os.kill(int(flag.read_text()), signal.SIGKILL)  # the runtime create fails
        creator.join(timeout=30)
    assert errors, "the create cannot have finished: crid was killed"
    with_rootfs = sorted(p.name for p in (storage / "containers").iterdir())
    assert with_rootfs, "crid died after making the root filesystem"

    wrapper.write_text(f'#!/bin/sh\nexec {runc} "$@"\n')
    proc = start_serve(config_file, socket_path)
    try:
        log = _log(config_file)
        assert UNCLEAN in log and CHECKED in log
        with grpc.insecure_channel(f"unix://{socket_path}") as channel:
            stub = api_pb2_grpc.RuntimeServiceStub(channel)
            assert list(stub.ListContainers(api_pb2.ListContainersRequest()).containers) == []
            pods = stub.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items
            assert [p.id for p in pods] == [pod_id.pod_sandbox_id]
            stub.StopPodSandbox(
                api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id.pod_sandbox_id), timeout=60
            )
            stub.RemovePodSandbox(
                api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id.pod_sandbox_id), timeout=60
            )
    finally:
        assert stop_serve(proc) == 0
    assert sorted(p.name for p in (storage / "containers").iterdir()) == []
    checked = crid("check", "--config", str(config_file))
    assert checked.returncode == 0, checked.stdout
