"""What failures leave is collected: store blobs and layers, and stale CNI attachments."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2
from ociimage.testing import LocalRegistry, TestImages
from ociimage.testing.faults import Fault, FaultyProxy
from ociimage.testing.images import Platform, build_image, busybox_arch, busybox_layer
from ociimage.testing.layers import Layer, sha256_digest
from ociimage.testing.push import push_image

from ._images_support import image_config, pull, running

pytestmark = pytest.mark.root


def _stored(daemon_store_root: Path) -> tuple[set[str], int]:
    """(blob digests, number of layer directories) in a store directory."""
    blobs = {
        f"{p.parent.name}:{p.name}" for p in (daemon_store_root / "blobs").rglob("*") if p.is_file()
    }
    layers = daemon_store_root / "layers"
    return blobs, sum(1 for p in layers.iterdir() if p.is_dir()) if layers.is_dir() else 0


async def test_a_failed_pull_leaves_no_blobs(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    layered = test_images.layered
    with FaultyProxy(registry.url) as proxy:
        # The last layer is missing: the others (and the config) are already stored.
        proxy.add(Fault(path=layered.layer_digests[-1], status=404, times=None))
        config = image_config(tmp_path, [proxy.host])
        async with running(config) as (daemon, stub):
            assert daemon.context is not None
            ctx = daemon.context
            await ctx.gc.wait()
            runs = ctx.gc.store_runs
            with pytest.raises(grpc.aio.AioRpcError):
                await pull(stub, f"{proxy.host}/{layered.repository}:{layered.tag}")
            await ctx.gc.wait()
            assert ctx.gc.store_runs > runs
            blobs, layers = _stored(Path(ctx.store.store.root))
            assert not blobs and layers == 0
            # A good pull afterwards works, and its blobs stay.
            proxy.clear()
            await pull(stub, f"{proxy.host}/{layered.repository}:{layered.tag}")
            await ctx.gc.wait()
            blobs, layers = _stored(Path(ctx.store.store.root))
            assert len(blobs) == 5 and layers == 3  # manifest, config, three layers


def _escaping_layer() -> Layer:
    """A gzip layer whose second member climbs out with ``..`` (ocistore refuses it)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("ok", "../escape"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"data"))
    tar_bytes = raw.getvalue()
    data = gzip.compress(tar_bytes, mtime=0)
    return Layer(
        data=data,
        digest=sha256_digest(data),
        size=len(data),
        diff_id=sha256_digest(tar_bytes),
        entries=(),
    )


async def test_layers_unpacked_before_a_later_one_failed_are_collected(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    broken = _escaping_layer()
    image = build_image(
        "crid-test/gc-broken",
        "latest",
        [busybox_layer(), broken],
        platform=Platform(os="linux", architecture=busybox_arch()),
    )
    pushed = push_image(registry, image)
    config = image_config(tmp_path, [registry.host])
    async with running(config) as (daemon, stub):
        assert daemon.context is not None
        ctx = daemon.context
        with pytest.raises(grpc.aio.AioRpcError):
            await pull(stub, pushed.reference)
        await ctx.gc.wait()
        blobs, layers = _stored(Path(ctx.store.store.root))
        assert not blobs and layers == 0


async def test_stale_cni_attachments_are_deleted_at_start(tmp_path: Path) -> None:
    """A cached attachment of a pod crid does not know (a crash between ADD and the
    record) is DELeted at start, which releases its IPAM address."""
    from ._lifecycle import crid_env, pod_config, run_pod

    async with crid_env(tmp_path) as env:
        pod_id = await run_pod(env, pod_config(env))
        assert env.daemon.context is not None
        ctx = env.daemon.context
        cache = Path(ctx.layout.cni_cache)
        cached = [p for p in cache.rglob("*") if p.is_file() and pod_id in p.name]
        assert cached, list(cache.rglob("*"))
        leases = [
            p for p in (tmp_path / "ipam").rglob("*") if p.is_file() and pod_id in p.read_text()
        ]
        assert leases
        # Forget the pod as a crash between the CNI ADD and the record would.
        record = ctx.registry.sandbox(pod_id)
        await ctx.registry.remove_sandbox(pod_id)
        await ctx.gc.collect_network()
        await ctx.registry.save_sandbox(record)  # so that its namespaces are released
        assert not [p for p in cache.rglob("*") if p.is_file() and pod_id in p.name]
        assert not [
            p for p in (tmp_path / "ipam").rglob("*") if p.is_file() and pod_id in p.read_text()
        ]
        # A pod crid knows keeps its attachment.
        kept = await run_pod(env, pod_config(env, "kept"))
        await ctx.gc.collect_network()
        assert [p for p in cache.rglob("*") if p.is_file() and kept in p.name]
        status = await env.stub.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=kept)
        )
        assert status.status.network.ip
