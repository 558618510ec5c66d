"""SIGKILL a pulling process at many points; the reopened store is consistent and the pull works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from ocispec.image import Descriptor
from ocistore import Store, chain_ids
from ocistore.testing import Member, compress, make_tar, sha256

CHILD = Path(__file__).with_name("crash_child.py")
NAME = "127.0.0.1:5000/crash/test:1"


@pytest.fixture(scope="module")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image with enough files that unpacking takes a while: kill points land inside it."""
    out = tmp_path_factory.mktemp("crash-blobs")
    base = make_tar([Member(f"base/d{i % 20}/f{i}", data=b"x" * (i % 300)) for i in range(800)])
    mid = make_tar(
        [Member("big/blob", data=os.urandom(4 << 20))]
        + [Member(f"mid/f{i}", data=b"m" * 100) for i in range(300)]
    )
    top = make_tar(
        [
            Member("base/d1/.wh..wh..opq"),
            Member("mid/.wh.f1"),
            Member("top/", tarfile.DIRTYPE),
            Member("top/f", data=b"top"),
        ]
    )
    layers = []
    for tar, kind in ((base, "gzip"), (mid, "zstd"), (top, "tar")):
        blob, mt = compress(tar, kind)
        desc = Descriptor.from_bytes(mt, blob)
        (out / desc.digest.split(":")[1]).write_bytes(blob)
        layers.append((desc, sha256(tar)))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
        }
    ).encode()
    cdesc = Descriptor.from_bytes("application/vnd.oci.image.config.v1+json", config)
    (out / cdesc.digest.split(":")[1]).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cdesc.to_dict(),
            "layers": [d.to_dict() for d, _ in layers],
        }
    ).encode()
    mdesc = Descriptor.from_bytes("application/vnd.oci.image.manifest.v1+json", manifest)
    (out / mdesc.digest.split(":")[1]).write_bytes(manifest)
    plan = {
        "blobs": [cdesc.to_dict(), *(d.to_dict() for d, _ in layers), mdesc.to_dict()],
        "manifest": mdesc.to_dict(),
        "names": [NAME],
        "chains": chain_ids([d for _, d in layers]),
    }
    (out / "image.json").write_text(json.dumps(plan))
    return out


def _start(store: Path, blobs: Path) -> tuple[subprocess.Popen[str], float]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(store), str(blobs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc, time.monotonic()


def _pull(store: Path, blobs: Path) -> float:
    proc, started = _start(store, blobs)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "done"
    return time.monotonic() - started


def _pull_here(store: Store, blobs: Path, plan: dict[str, object]) -> None:
    sink = store.pull_sink()
    for raw in plan["blobs"]:  # type: ignore[attr-defined]
        desc = Descriptor.from_dict(raw)
        if not sink.has_blob(desc.digest):
            writer = sink.open_blob(desc)
            writer.write((blobs / desc.digest.split(":")[1]).read_bytes())
            writer.commit()
    manifest = Descriptor.from_dict(plan["manifest"])  # type: ignore[arg-type]
    sink.commit_image(manifest=manifest, names=[NAME])


def assert_consistent(store: Store) -> None:
    """Walk directories and tables: everything is either whole and recorded, or absent."""
    root = store.root
    assert os.listdir(root / "tmp") == []
    assert os.listdir(root / "trash") == []
    layers = {layer.chain_id.split(":")[1]: layer for layer in store.layers.all()}
    assert set(os.listdir(root / "layers")) == set(layers)
    assert set(os.listdir(root / "links")) == {layer.link for layer in layers.values()}
    for layer in layers.values():
        assert (root / "links" / layer.link / ".").resolve() == layer.path.resolve()
        assert store.has_blob(layer.blob)
    for digest in store.blobs.digests():
        assert store.blobs.verify(digest), digest
    for image in store.list_images():
        for chain in image.layers:
            assert chain.split(":")[1] in layers
        assert store.has_blob(image.id) and store.has_blob(image.manifest_digest)


def _check_image(store: Store, plan: dict[str, object]) -> None:
    image = store.image(NAME)
    assert list(image.layers) == plan["chains"]
    paths = [store.layers.get(c).path for c in image.layers]  # type: ignore[union-attr]
    assert len(os.listdir(paths[0] / "base/d3")) == 40
    assert (paths[1] / "big/blob").stat().st_size == 4 << 20
    assert os.getxattr(paths[2] / "base/d1", "trusted.overlay.opaque") == b"y"
    assert (paths[2] / "top/f").read_bytes() == b"top"


@pytest.mark.root
@pytest.mark.slow
def test_sigkill_during_pull_and_commit(tmp_path: Path, blob_dir: Path) -> None:
    plan = json.loads((blob_dir / "image.json").read_text())
    duration = _pull(tmp_path / "reference", blob_dir)
    fractions = [0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97]
    outcomes = []
    debris: list[str] = []
    for i, fraction in enumerate(fractions):
        root = tmp_path / f"s{i}"
        proc, started = _start(root, blob_dir)
        time.sleep(max(0.0, started + duration * fraction - time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        with Store.open(root) as store:
            debris += store.repair_report.temp_removed
            assert_consistent(store)
            outcomes.append(len(store.list_images()))
            if store.list_images():
                _check_image(store, plan)
        with Store.open(root, durable=False) as store:
            _pull_here(store, blob_dir, plan)  # the same pull now succeeds
            assert_consistent(store)
            _check_image(store, plan)
    assert 0 in outcomes  # at least the early kills really interrupted the pull
    assert any("/tmp/layer-" in path for path in debris)  # and some landed mid-unpack
