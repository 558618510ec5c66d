"""The daemon in-process: the socket's life, Version, Status, UNIMPLEMENTED for the rest."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crid import __version__
from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config
from crid.errors import CridError, SocketInUseError
from crid.server import Daemon
from crid.services import ImageService, RuntimeService
from crid.services._unimplemented import implemented_methods

from .conftest import make_config

pytestmark = pytest.mark.binaries("runc", "conmon")

LIFECYCLE_RPCS = {
    "RunPodSandbox",
    "StopPodSandbox",
    "RemovePodSandbox",
    "PodSandboxStatus",
    "ListPodSandbox",
    "CreateContainer",
    "StartContainer",
    "StopContainer",
    "RemoveContainer",
    "ContainerStatus",
    "ListContainers",
    "ExecSync",
}
# RPCs of the observation and runtime-wide mixins (stats, events, runtime config).
IMAGE_RPCS = {
    "ListImages",
    "StreamImages",
    "ImageStatus",
    "PullImage",
    "RemoveImage",
    "ImageFsInfo",
}
OBSERVE_RPCS = {
    "ContainerStats",
    "ListContainerStats",
    "StreamContainerStats",
    "PodSandboxStats",
    "ListPodSandboxStats",
    "StreamPodSandboxStats",
    "ListMetricDescriptors",
    "ListPodSandboxMetrics",
    "StreamPodSandboxMetrics",
    "GetContainerEvents",
    "StreamPodSandboxes",
    "StreamContainers",
    "RuntimeConfig",
    "UpdateRuntimeConfig",
    "UpdateContainerResources",
    "UpdatePodSandboxResources",
    "ReopenContainerLog",
    "CheckpointContainer",
}

STREAMING_RPCS = {"Exec", "Attach", "PortForward"}

CNI_CONF = {"cniVersion": "1.0.0", "name": "testnet", "plugins": [{"type": "loopback"}]}


@pytest.fixture
async def daemon(config: Config) -> AsyncIterator[Daemon]:
    running = Daemon(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop(grace=0)


def channel(daemon: Daemon) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"unix://{daemon.socket_path}")


async def status(config: Config) -> dict[str, api_pb2.RuntimeCondition]:
    running = Daemon(config)
    await running.start()
    try:
        async with channel(running) as ch:
            reply = await api_pb2_grpc.RuntimeServiceStub(ch).Status(api_pb2.StatusRequest())
    finally:
        await running.stop(grace=0)
    return {c.type: c for c in reply.status.conditions}


async def test_version(daemon: Daemon) -> None:
    async with channel(daemon) as ch:
        reply = await api_pb2_grpc.RuntimeServiceStub(ch).Version(api_pb2.VersionRequest())
    assert reply.runtime_name == "crid"
    assert reply.runtime_version == __version__
    assert reply.runtime_api_version == "v1"
    assert reply.version == "0.1.0"


async def test_socket_is_0660_and_removed_on_stop(config: Config) -> None:
    running = Daemon(config)
    await running.start()
    mode = running.socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    await running.stop(grace=0)
    assert not running.socket_path.exists()


async def test_status_ready_when_runtime_conmon_and_network_present(config: Config) -> None:
    (Path(config.crid.network.network_dir) / "10-test.conflist").write_text(json.dumps(CNI_CONF))
    conditions = await status(config)
    assert conditions["RuntimeReady"].status is True
    assert conditions["NetworkReady"].status is True


async def test_network_not_ready_without_cni_config_then_ready_without_restart(
    daemon: Daemon,
) -> None:
    async with channel(daemon) as ch:
        stub = api_pb2_grpc.RuntimeServiceStub(ch)
        reply = await stub.Status(api_pb2.StatusRequest(verbose=True))
        conditions = {c.type: c for c in reply.status.conditions}
        assert conditions["NetworkReady"].status is False
        assert conditions["NetworkReady"].reason == "NetworkPluginNotReady"
        assert "no valid CNI network config" in conditions["NetworkReady"].message
        assert json.loads(reply.info["config"])["crid"]["api"]["listen"] == str(daemon.socket_path)
        network_dir = Path(daemon.config.crid.network.network_dir)
        (network_dir / "99-late.conflist").write_text(json.dumps(CNI_CONF))
        deadline = time.monotonic() + 10  # the directory is watched: no restart needed
        while True:
            reply = await stub.Status(api_pb2.StatusRequest())
            conditions = {c.type: c for c in reply.status.conditions}
            if conditions["NetworkReady"].status or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert conditions["NetworkReady"].status is True
        assert dict(reply.info) == {}  # info only when verbose


async def test_named_default_network_must_exist(tmp_path: Path) -> None:
    _, config = make_config(tmp_path, network='cni_default_network = "other"\n')
    assert config.crid.network.cni_default_network == "other"
    (Path(config.crid.network.network_dir) / "10-test.conflist").write_text(json.dumps(CNI_CONF))
    conditions = await status(config)
    assert conditions["NetworkReady"].status is False
    assert "network 'other' not found" in conditions["NetworkReady"].message


async def test_network_not_ready_when_a_plugin_is_missing(tmp_path: Path) -> None:
    _, config = make_config(tmp_path)
    conf = {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "no-such-plugin"}]}
    (Path(config.crid.network.network_dir) / "10-test.conflist").write_text(json.dumps(conf))
    condition = (await status(config))["NetworkReady"]
    assert condition.status is False
    assert "no-such-plugin" in condition.message


async def test_runtime_not_ready_when_runtime_binary_missing(tmp_path: Path) -> None:
    _, config = make_config(
        tmp_path, '[crid.runtime.runtimes.runc]\nruntime_path = "/nonexistent/runc"\n'
    )
    condition = (await status(config))["RuntimeReady"]
    assert condition.status is False
    assert condition.reason == "RuntimeBinaryNotFound"
    assert "/nonexistent/runc" in condition.message


async def test_runtime_not_ready_once_its_binary_is_removed(tmp_path: Path) -> None:
    """Status keeps the default handler resolved between calls; a binary removed after
    a ready answer is noticed at the next call, with the same reason."""
    runc = tmp_path / "bin" / "runc"
    runc.parent.mkdir()
    shutil.copy2(shutil.which("runc") or "/usr/sbin/runc", runc)
    _, config = make_config(tmp_path, f'[crid.runtime.runtimes.runc]\nruntime_path = "{runc}"\n')
    running = Daemon(config)
    await running.start()
    try:
        async with channel(running) as ch:
            stub = api_pb2_grpc.RuntimeServiceStub(ch)
            ready = await stub.Status(api_pb2.StatusRequest())
            runc.unlink()
            gone = await stub.Status(api_pb2.StatusRequest())
    finally:
        await running.stop(grace=0)
    assert {c.type: c.status for c in ready.status.conditions}["RuntimeReady"] is True
    condition = {c.type: c for c in gone.status.conditions}["RuntimeReady"]
    assert condition.status is False
    assert condition.reason == "RuntimeBinaryNotFound"
    assert str(runc) in condition.message


async def test_runtime_not_ready_when_conmon_missing(tmp_path: Path) -> None:
    _, config = make_config(tmp_path, '[crid.runtime]\nconmon = "/nonexistent/conmon"\n')
    condition = (await status(config))["RuntimeReady"]
    assert condition.status is False
    assert condition.reason == "ConmonNotFound"


@pytest.mark.parametrize(
    ("service", "stub_class", "servicer"),
    [
        ("RuntimeService", api_pb2_grpc.RuntimeServiceStub, RuntimeService),
        ("ImageService", api_pb2_grpc.ImageServiceStub, ImageService),
    ],
)
async def test_every_other_rpc_is_unimplemented_with_a_clear_message(
    daemon: Daemon, service: str, stub_class: type, servicer: type
) -> None:
    descriptor = api_pb2.DESCRIPTOR.services_by_name[service]
    implemented = set(implemented_methods(servicer, service))
    assert implemented <= (
        {"Version", "Status"} | OBSERVE_RPCS | IMAGE_RPCS | LIFECYCLE_RPCS | STREAMING_RPCS
    )
    async with channel(daemon) as ch:
        stub = stub_class(ch)
        for method in descriptor.methods:
            if method.name in implemented:
                continue
            request = getattr(api_pb2, method.input_type.name)()
            call = getattr(stub, method.name)(request)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                if method.server_streaming:
                    async for _ in call:
                        pass
                else:
                    await call
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED, method.name
            assert f"/runtime.v1.{service}/{method.name} is not implemented" in (
                info.value.details() or ""
            )


async def test_stale_socket_is_replaced(config: Config) -> None:
    path = Path(config.crid.api.listen)
    path.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a crashed daemon's leftover
    running = Daemon(config)
    await running.start()
    try:
        async with channel(running) as ch:
            await api_pb2_grpc.RuntimeServiceStub(ch).Version(api_pb2.VersionRequest())
    finally:
        await running.stop(grace=0)


async def test_live_socket_of_another_program_is_refused(config: Config) -> None:
    path = Path(config.crid.api.listen)
    path.parent.mkdir(parents=True)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen()
    try:
        with pytest.raises(SocketInUseError, match="already serving"):
            await Daemon(config).start()
        assert path.exists()
    finally:
        live.close()


async def test_second_daemon_on_same_socket_is_refused(daemon: Daemon) -> None:
    with pytest.raises(SocketInUseError, match="another crid"):
        await Daemon(daemon.config).start()
    async with channel(daemon) as ch:  # the first one is unharmed
        await api_pb2_grpc.RuntimeServiceStub(ch).Version(api_pb2.VersionRequest())


async def test_non_socket_file_is_never_removed(config: Config) -> None:
    path = Path(config.crid.api.listen)
    path.parent.mkdir(parents=True)
    path.write_text("precious")
    with pytest.raises(CridError, match="not a socket"):
        await Daemon(config).start()
    assert path.read_text() == "precious"


async def test_systemd_cgroup_driver_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """This host runs no systemd (test_cgroups_systemd.py runs one for the driver)."""
    from crid.errors import UnsupportedConfigError

    _, config = make_config(tmp_path, '[crid.runtime]\ncgroup_manager = "systemd"\n')
    with pytest.raises(
        UnsupportedConfigError, match=r"cgroup_manager = .systemd. needs systemd as the init"
    ):
        await Daemon(config).start()
    assert not Path(config.crid.api.listen).exists()
