"""A full disk: pulls, unpacks, container creates and log writes on small tmpfs mounts.

Each failure is RESOURCE_EXHAUSTED with a message naming "no space", leaves nothing
half-committed (no image, blob, layer, container record or directory), and the same
RPC succeeds once the space is freed.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from ociimage.testing import LocalRegistry, TestImages

from ._faults_support import fill, fill_inodes, small_fs
from ._images_support import image_config, pull, running

pytestmark = pytest.mark.root


def _stored(storage: Path) -> tuple[set[str], int, int]:
    """(blob files, layer directories, files left in tmp/) of a store root."""
    blobs = {p.name for p in (storage / "blobs").rglob("*") if p.is_file()}
    layers = storage / "layers"
    tmp = storage / "tmp"
    return (
        blobs,
        sum(1 for p in layers.iterdir() if p.is_dir()) if layers.is_dir() else 0,
        sum(1 for _ in tmp.iterdir()) if tmp.is_dir() else 0,
    )


@pytest.mark.parametrize("phase", ["blobs", "unpack"])
async def test_fault_disk_full_during_pull(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages, phase: str
) -> None:
    busybox = test_images.busybox
    compressed = sum(layer.size for layer in busybox.image.layers)
    # "blobs": no room for the layer download; "unpack": room for the download (and a
    # little metadata), none for the unpacked tree (about twice the gzip size).
    leave = 64 * 1024 if phase == "blobs" else compressed + 384 * 1024
    config = image_config(tmp_path, [registry.host])
    with small_fs(tmp_path / "root", size="64m") as root:
        async with running(config) as (daemon, stub):
            assert daemon.context is not None
            ctx = daemon.context
            storage = Path(ctx.store.store.root)
            await ctx.gc.wait()
            filler = fill(root, leave=leave)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pull(stub, busybox.reference)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "no space" in (info.value.details() or "").lower()
            await ctx.gc.wait()
            assert await ctx.store.list_images() == []
            blobs, layers, tmp = _stored(storage)
            assert (blobs, layers, tmp) == (set(), 0, 0)
            reply = await stub.ImageStatus(
                api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=busybox.reference))
            )
            assert not reply.HasField("image")
            filler.unlink()
            assert await pull(stub, busybox.reference) == busybox.config_digest
            blobs, layers, _ = _stored(storage)
            assert len(blobs) == 3 and layers == 1  # manifest, config, the layer


@pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge")
@pytest.mark.parametrize("where", ["rootfs", "bundle"])
async def test_fault_disk_full_during_container_create(tmp_path: Path, where: str) -> None:
    """No inode left for the root filesystem's upper directory (the store), or no byte
    left for the bundle's config.json (the run directory)."""
    from ._lifecycle import container_config, crid_env, pod_config, run_pod

    mount = tmp_path / ("root" if where == "rootfs" else "run")
    with small_fs(mount, size="64m", inodes=4096 if where == "rootfs" else 0):
        async with crid_env(tmp_path) as env:
            assert env.daemon.context is not None
            ctx = env.daemon.context
            pod = pod_config(env)
            pod_id = await run_pod(env, pod)
            request = api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id,
                config=container_config("c", ["sleep 60"]),
                sandbox_config=pod,
            )
            filler = fill_inodes(mount) if where == "rootfs" else fill(mount)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await env.stub.CreateContainer(request)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
            assert "no space" in (info.value.details() or "").lower()
            listed = await env.stub.ListContainers(api_pb2.ListContainersRequest())
            assert list(listed.containers) == []
            assert list(ctx.registry.containers()) == []
            store_containers = Path(ctx.store.store.root) / "containers"
            assert not any(store_containers.iterdir())
            bundles = ctx.layout.bundle("x").parent
            assert not bundles.is_dir() or not any(bundles.iterdir())
            if filler.is_dir():
                shutil.rmtree(filler)
            else:
                filler.unlink()
            created = await env.stub.CreateContainer(request)
            await env.stub.StartContainer(
                api_pb2.StartContainerRequest(container_id=created.container_id)
            )


@pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge")
async def test_fault_disk_full_for_the_container_log(tmp_path: Path) -> None:
    """conmon cannot write the log: the container keeps running and crid keeps
    answering; once space returns, new lines reach the log again."""
    from ._lifecycle import container_config, crid_env, pod_config, run_pod

    with small_fs(tmp_path / "logs", size="1m") as logs:
        async with crid_env(tmp_path) as env:
            pod = pod_config(env)
            pod_id = await run_pod(env, pod)
            script = "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.02; done"
            created = await env.stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id,
                    config=container_config("talker", [script]),
                    sandbox_config=pod,
                )
            )
            cid = created.container_id
            await env.stub.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
            log = Path(env.tmp / "logs" / "web" / "talker.log")
            await _wait(lambda: "line-5" in log.read_text())
            filler = fill(logs)
            await asyncio.sleep(1.0)  # the container writes into a full file system
            reply = await env.stub.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid))
            assert reply.status.state == api_pb2.CONTAINER_RUNNING
            last_before = _last_line(log)
            filler.unlink()
            await _wait(lambda: _last_line(log) > last_before + 20)
            reply = await env.stub.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid))
            assert reply.status.state == api_pb2.CONTAINER_RUNNING
            await env.stub.StopContainer(api_pb2.StopContainerRequest(container_id=cid))


def _last_line(log: Path) -> int:
    numbers = [
        int(line.rsplit("line-", 1)[1])
        for line in log.read_text(errors="replace").splitlines()
        if "line-" in line and line.rsplit("line-", 1)[1].isdigit()
    ]
    return max(numbers, default=-1)


async def _wait(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.05)
