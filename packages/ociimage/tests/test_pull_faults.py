"""Failure paths of a pull, through a fault-injecting proxy in front of real registries."""

from __future__ import annotations

import asyncio
import errno
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ociimage._retry import RetryPolicy
from ociimage.auth import Credentials
from ociimage.errors import (
    DigestMismatchError,
    ProgressTimeoutError,
    RegistryUnavailableError,
)
from ociimage.layout import OCILayoutSink
from ociimage.pull import Puller, pull
from ociimage.registries import RegistriesConfig
from ociimage.testing import DOCKER_REGISTRY, LocalRegistry, TestImages, busybox_image, push_image
from ociimage.testing.faults import Fault, FaultyProxy

pytestmark = pytest.mark.binaries(DOCKER_REGISTRY)

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultyProxy]:
    with FaultyProxy(registry.url) as p:
        yield p


def _conf(*hosts: str) -> RegistriesConfig:
    return RegistriesConfig().with_insecure(hosts)


def _visible(root: Path) -> tuple[list[str], list[str]]:
    """(blob files, index.json names) of a layout; a layout whose first blob was never
    committed has neither ``blobs/`` nor ``index.json``."""
    blobs = sorted(p.name for p in (root / "blobs").rglob("*") if p.is_file())
    if not (root / "index.json").exists():
        assert not blobs and not (root / "oci-layout").exists()
        return blobs, []
    index = json.loads((root / "index.json").read_text())
    return blobs, [
        m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]
    ]


def _ref(proxy: FaultyProxy, image_repo: str) -> str:
    return f"{proxy.host}/{image_repo}:latest"


async def test_retries_5xx_and_429_honouring_retry_after(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.busybox
    proxy.add(Fault(path="/manifests/", status=503, times=2))
    proxy.add(
        Fault(path="/blobs/", method="GET", status=429, headers={"Retry-After": "1"}, times=1)
    )
    started = time.monotonic()
    async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
        result = await puller.pull(_ref(proxy, image.repository), OCILayoutSink(tmp_path / "oci"))
    assert result.manifest.digest == image.manifest_digest
    assert time.monotonic() - started >= 1.0  # waited as Retry-After said
    assert all(f.hits == f.times for f in proxy.faults)


async def test_gives_up_after_retries(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    proxy.add(Fault(path="/manifests/", status=500, times=None))
    async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
        with pytest.raises(RegistryUnavailableError, match="after 4 attempts"):
            await puller.pull(_ref(proxy, "crid-test/busybox"), OCILayoutSink(tmp_path / "oci"))


async def test_dropped_connection_resumes_with_range(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.busybox
    layer = image.layer_digests[0]
    proxy.add(Fault(path=f"/blobs/{layer}", method="GET", drop_after=300_000, times=1))
    async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
        result = await puller.pull(_ref(proxy, image.repository), OCILayoutSink(tmp_path / "oci"))
    assert result.manifest.digest == image.manifest_digest
    gets = [r for r in proxy.requests if r.method == "GET" and layer in r.path]
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    assert gets[1].headers["range"] == "bytes=300000-"


async def test_a_full_disk_fails_the_pull_at_once_with_its_own_error(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    """A layer that cannot be written is the disk's failure, not the connection's: the
    pull ends with ENOSPC after one GET of it, not after resuming it again and again."""
    image = test_images.busybox
    layer = image.layer_digests[0]
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        async with Puller(registries=_conf(proxy.host), retry=FAST) as puller:
            with pytest.raises(OSError) as info:
                await puller.pull(_ref(proxy, image.repository), OCILayoutSink(disk / "oci"))
        assert info.value.errno == errno.ENOSPC
        assert not any((disk / "oci" / ".ingest").glob("*"))
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    gets = [r for r in proxy.requests if r.method == "GET" and layer in r.path]
    assert len(gets) == 1


async def test_corrupted_blob_fails_and_commits_nothing(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.layered
    proxy.add(
        Fault(path=f"/blobs/{image.layer_digests[1]}", method="GET", corrupt=True, times=None)
    )
    root = tmp_path / "oci"
    with pytest.raises(DigestMismatchError, match=image.layer_digests[1]):
        await pull(_ref(proxy, image.repository), OCILayoutSink(root), registries=_conf(proxy.host))
    blobs, names = _visible(root)
    assert names == []
    assert image.layer_digests[1].split(":")[1] not in blobs
    assert image.manifest_digest.split(":")[1] not in blobs
    assert not any((root / ".ingest").glob("*")) if (root / ".ingest").exists() else True


async def test_stalled_registry_hits_progress_timeout(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.busybox
    proxy.add(Fault(path="/blobs/sha256", method="GET", stall_after=1000, times=None))
    root = tmp_path / "oci"
    started = time.monotonic()
    with pytest.raises(ProgressTimeoutError, match=r"no progress .* for 0\.5s"):
        await pull(
            _ref(proxy, image.repository),
            OCILayoutSink(root),
            registries=_conf(proxy.host),
            progress_timeout=0.5,
        )
    assert time.monotonic() - started < 10
    blobs, names = _visible(root)
    assert names == []
    # only the small, complete and verified config blob got through: no layer, no image
    assert blobs == [image.config_digest.split(":")[1]]


async def test_cancellation_leaves_nothing_partial(
    proxy: FaultyProxy, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.busybox
    proxy.add(
        Fault(path=f"/blobs/{image.layer_digests[0]}", method="GET", stall_after=5000, times=None)
    )
    root = tmp_path / "oci"
    task = asyncio.ensure_future(
        pull(_ref(proxy, image.repository), OCILayoutSink(root), registries=_conf(proxy.host))
    )
    for _ in range(200):
        await asyncio.sleep(0.02)
        if (root / ".ingest").exists() and any((root / ".ingest").iterdir()):
            break
    assert any((root / ".ingest").iterdir()), "the layer download should be under way"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    blobs, names = _visible(root)
    assert names == []
    assert image.layer_digests[0].split(":")[1] not in blobs
    assert not any((root / ".ingest").iterdir())


async def test_mirrors_in_order_then_primary(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.user_env
    with LocalRegistry() as empty_mirror, FaultyProxy(registry.url) as good_mirror:
        conf = RegistriesConfig.parse(
            f"""
            [[registry]]
            prefix = "primary.invalid"
            location = "{registry.host}"
            insecure = true
            [[registry.mirror]]
            location = "{empty_mirror.host}"
            insecure = true
            [[registry.mirror]]
            location = "{good_mirror.host}"
            insecure = true
            """
        )
        logical = f"primary.invalid/{image.repository}:latest"
        result = await pull(logical, OCILayoutSink(tmp_path / "a"), registries=conf)
        assert result.manifest.digest == image.manifest_digest
        assert result.names == [logical]  # named by the logical reference
        assert result.image.source.mirror
        assert str(result.image.source.reference).startswith(good_mirror.host)
        assert any("/blobs/" in r.path for r in good_mirror.requests)

        # a mirror that lacks the image and one that is down: the primary serves it
        good_mirror.add(Fault(path="/", status=503, times=None))
        async with Puller(registries=conf, retry=FAST) as puller:
            result = await puller.pull(logical, OCILayoutSink(tmp_path / "b"))
        assert not result.image.source.mirror
        assert str(result.image.source.reference) == f"{registry.host}/{image.repository}:latest"


async def test_cross_host_redirect_drops_authorization(
    tmp_path: Path, registry: LocalRegistry
) -> None:
    image = busybox_image()
    push_image(registry, image)  # the open registry has the same blobs
    with (
        LocalRegistry(htpasswd=("alice", "pw")) as private,
        FaultyProxy(registry.url, bind="127.0.0.2") as elsewhere,
    ):
        push_image(private, image)
        with FaultyProxy(private.url) as front:
            front.add(Fault(path="/blobs/", method="GET", redirect=elsewhere.url, times=None))
            result = await pull(
                image.reference(front.host),
                OCILayoutSink(tmp_path / "oci"),
                registries=_conf(front.host),
                credentials=Credentials(username="alice", password="pw"),
            )
            assert result.manifest.digest == image.manifest_digest
            assert any("authorization" in r.headers for r in front.requests)
    followed = [r for r in elsewhere.requests if "/blobs/" in r.path]
    assert followed
    assert all("authorization" not in r.headers for r in followed)


class _MemoryWriter:
    """A minimal BlobWriter that keeps bytes in memory (no verification of its own)."""

    def __init__(self) -> None:
        self.data = bytearray()

    @property
    def offset(self) -> int:
        return len(self.data)

    def write(self, data: bytes) -> None:
        self.data += data

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        self.data.clear()


async def test_client_verifies_blobs_itself_by_default(
    proxy: FaultyProxy, test_images: TestImages
) -> None:
    from ociimage.client import RegistryClient
    from ociimage.sink import BlobWriter
    from ocispec.image import Descriptor, Manifest

    image = test_images.busybox
    async with RegistryClient(proxy.host, insecure=True, retry=FAST) as client:
        fetched = await client.get_manifest(image.repository, image.manifest_digest)
        layer: Descriptor = Manifest.from_json(fetched.data).layers[0]
        good = _MemoryWriter()
        assert isinstance(good, BlobWriter)
        await client.fetch_blob(image.repository, layer, good)
        assert len(good.data) == layer.size
        proxy.add(Fault(path=f"/blobs/{layer.digest}", method="GET", corrupt=True))
        with pytest.raises(DigestMismatchError, match="received bytes hash"):
            await client.fetch_blob(image.repository, layer, _MemoryWriter())


async def test_a_blob_step_in_a_thread_finishes_before_a_twice_cancelled_pull_gives_up() -> None:
    # The kubelet's deadline and crid's shutdown can both cancel one pull: the second
    # cancellation must not let the caller go on (and remove the blob) while the thread
    # still writes it.
    import threading

    from ociimage.pull import _to_the_end

    finished = threading.Event()

    def write() -> None:
        time.sleep(0.3)
        finished.set()

    task = asyncio.ensure_future(_to_the_end(write))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()
