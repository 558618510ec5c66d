"""ociimage.layout: the OCI layout sink's guarantees, and skopeo/umoci reading what it wrote."""

from __future__ import annotations

import hashlib
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ociimage.errors import DigestMismatchError, LayoutError, SizeMismatchError
from ociimage.layout import OCILayout, OCILayoutSink
from ociimage.pull import pull
from ociimage.registries import RegistriesConfig
from ociimage.testing import LocalRegistry, TestImages
from ocispec.image import Descriptor, MediaType


def _desc(data: bytes, media_type: str = "application/octet-stream") -> Descriptor:
    return Descriptor.from_bytes(media_type, data)


@pytest.mark.parametrize("durable", [False, True])
def test_blob_commit_verifies_and_is_atomic(tmp_path: Path, durable: bool) -> None:
    sink = OCILayoutSink(tmp_path, durable=durable)
    data = b"hello layer" * 1000
    desc = _desc(data)
    writer = sink.open_blob(desc)
    writer.write(data[:100])
    assert writer.offset == 100
    assert not sink.has_blob(desc.digest)
    writer.write(data[100:])
    writer.commit()
    assert sink.has_blob(desc.digest)
    assert sink.read_blob(desc.digest) == data
    assert not any((tmp_path / ".ingest").iterdir())

    bad = sink.open_blob(_desc(b"expected"))
    bad.write(b"somethin")  # same length, other bytes
    with pytest.raises(DigestMismatchError):
        bad.commit()
    assert not sink.has_blob(_desc(b"expected").digest)
    short = sink.open_blob(_desc(b"expected"))
    short.write(b"exp")
    with pytest.raises(SizeMismatchError):
        short.commit()
    aborted = sink.open_blob(_desc(b"gone"))
    aborted.write(b"go")
    aborted.abort()
    aborted.abort()  # idempotent
    with pytest.raises(LayoutError):
        aborted.write(b"ne")
    assert not any((tmp_path / ".ingest").iterdir())


def test_blobs_open_without_waiting_for_the_layout_files(tmp_path: Path) -> None:
    """A pull opens all its blobs at once: none of them waits for the layout's own files
    (written with fsync, under a lock), which the first commit writes before its rename."""
    from ociimage import layout

    root = tmp_path / "oci"
    sink = OCILayoutSink(root)
    first, second = b"config", b"layer" * 100
    with ThreadPoolExecutor(1) as pool, layout._index_lock:  # another thread's slow fsync
        writers = pool.submit(lambda: [sink.open_blob(_desc(d)) for d in (first, second)])
        opened = writers.result(timeout=10)
    assert not (root / "oci-layout").exists() and not (root / "index.json").exists()
    opened[0].write(first)
    opened[0].commit()  # the first blob to become visible makes the directory a layout
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads((root / "index.json").read_text())["manifests"] == []
    opened[1].write(second)
    opened[1].commit()
    assert OCILayout(root).read_blob(_desc(second).digest) == second


def test_a_large_buffer_is_written_in_small_writes(tmp_path: Path) -> None:
    """Each write is at most 32 KiB (its page-cache folios are no larger: see
    ``layout._WRITE_BYTES``), and a short write is taken up where it stopped."""
    data = bytes(range(256)) * 4100  # a little over 1 MiB
    desc = _desc(data)
    writer = OCILayoutSink(tmp_path).open_blob(desc)
    sizes: list[int] = []
    real = writer._file

    class Recording:
        def write(self, view: memoryview) -> int:
            sizes.append(len(view))
            return real.write(view[: len(view) - 1 if len(sizes) == 3 else None]) or 0

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    writer._file = Recording()  # type: ignore[assignment]
    writer.write(data)
    writer.commit()
    assert max(sizes) == 32 << 10
    assert OCILayout(tmp_path).read_blob(desc.digest) == data


def test_commit_image_names_move_and_require_blobs(tmp_path: Path) -> None:
    sink = OCILayoutSink(tmp_path)
    manifests = []
    for n in range(2):
        body = json.dumps({"schemaVersion": 2, "n": n}).encode()
        desc = _desc(body, MediaType.IMAGE_MANIFEST)
        w = sink.open_blob(desc)
        w.write(body)
        w.commit()
        manifests.append(desc)
    sink.commit_image(manifest=manifests[0], names=["r.io/a:1", "r.io/a:latest"])
    sink.commit_image(manifest=manifests[1], names=["r.io/a:latest"])
    entries = {i.name: i.descriptor.digest for i in sink.images()}
    assert entries == {"r.io/a:1": manifests[0].digest, "r.io/a:latest": manifests[1].digest}
    assert sink.find("r.io/a:1").digest == manifests[0].digest
    with pytest.raises(LayoutError, match="no image named"):
        sink.find("r.io/b:1")
    missing = _desc(b"never written", MediaType.IMAGE_MANIFEST)
    with pytest.raises(LayoutError, match="missing"):
        sink.commit_image(manifest=missing, names=["r.io/x:1"])
    # by digest: recorded without a name
    sink.commit_image(manifest=manifests[0], names=[])
    assert len(sink.images()) == 2  # already present by digest: no duplicate


def test_reader_refuses_non_layouts(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        OCILayout(tmp_path).index()
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "9.0.0"}')
    with pytest.raises(LayoutError, match="unsupported layout version"):
        OCILayout(tmp_path).check()
    with pytest.raises(LayoutError):
        OCILayoutSink(tmp_path)
    other = tmp_path / "x"
    OCILayoutSink(other)
    corrupt = other / "blobs" / "sha256" / hashlib.sha256(b"a").hexdigest()
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"b")
    with pytest.raises(DigestMismatchError):
        OCILayout(other).read_blob("sha256:" + hashlib.sha256(b"a").hexdigest())


@pytest.mark.binaries("skopeo", "umoci")
@pytest.mark.root
async def test_skopeo_and_umoci_read_the_layout(
    registry: LocalRegistry, test_images: TestImages, tmp_path: Path
) -> None:
    image = test_images.layered
    root = tmp_path / "oci"
    conf = RegistriesConfig().with_insecure([registry.host])
    await pull(image.reference, OCILayoutSink(root), registries=conf)
    await pull(test_images.multiplatform.reference, OCILayoutSink(root), registries=conf)

    inspected = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{root}:{image.reference}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert hashlib.sha256(inspected.stdout).hexdigest() == image.manifest_digest.split(":")[1]
    copied = tmp_path / "copied"
    subprocess.run(
        ["skopeo", "copy", f"oci:{root}:{image.reference}", f"oci:{copied}:x"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert OCILayout(copied).find("x").digest == image.manifest_digest

    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{root}:{image.reference}", str(bundle)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin" / "busybox").is_file()
    for path in image.tree.absent:
        assert not (rootfs / path).exists() and not (rootfs / path).is_symlink(), path
