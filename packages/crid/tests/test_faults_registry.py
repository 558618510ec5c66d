"""A registry that drops the connection mid-blob, through crid's PullImage.

A real registry behind ``FaultyProxy``: a dropped layer download is retried and resumed
from the bytes already received (a ``Range`` request); a registry that never delivers
the layer fails the pull with nothing committed, and the pull works once it recovers.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from ociimage.testing import LocalRegistry, TestImages
from ociimage.testing.faults import Fault, FaultyProxy

from ._images_support import image_config, pull, running

pytestmark = pytest.mark.root


async def test_fault_registry_drops_mid_blob_and_the_pull_resumes(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    layer = busybox.layer_digests[0]
    with FaultyProxy(registry.url) as proxy:
        proxy.add(Fault(path=f"/blobs/{layer}", method="GET", drop_after=300_000, times=2))
        config = image_config(tmp_path, [proxy.host])
        async with running(config) as (daemon, stub):
            assert daemon.context is not None
            image = f"{proxy.host}/{busybox.repository}:{busybox.tag}"
            assert await pull(stub, image) == busybox.config_digest
            stored = await daemon.context.store.image(image)
            assert stored.id == busybox.config_digest
    gets = [r for r in proxy.requests if r.method == "GET" and r.path.endswith(layer)]
    assert len(gets) == 3
    assert "range" not in gets[0].headers
    assert gets[1].headers["range"] == "bytes=300000-"
    assert gets[2].headers["range"] == "bytes=600000-"


async def test_fault_registry_never_delivers_and_nothing_is_committed(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages
) -> None:
    busybox = test_images.busybox
    layer = busybox.layer_digests[0]
    with FaultyProxy(registry.url) as proxy:
        proxy.add(Fault(path=f"/blobs/{layer}", method="GET", drop_after=200_000, times=1))
        proxy.add(Fault(path=f"/blobs/{layer}", method="GET", status=503, times=None))
        config = image_config(tmp_path, [proxy.host])
        async with running(config) as (daemon, stub):
            assert daemon.context is not None
            ctx = daemon.context
            image = f"{proxy.host}/{busybox.repository}:{busybox.tag}"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pull(stub, image)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
            await ctx.gc.wait()
            assert await ctx.store.list_images() == []
            storage = Path(ctx.store.store.root)
            assert not [p for p in (storage / "blobs").rglob("*") if p.is_file()]
            assert not any((storage / "layers").iterdir())
            assert not any((storage / "tmp").iterdir())
            proxy.clear()
            assert await pull(stub, image) == busybox.config_digest
