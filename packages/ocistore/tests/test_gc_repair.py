"""Garbage collection, start-up repair of planted debris, and concurrent pulls."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ocispec.image import Descriptor
from ocistore import DiffIDMismatchError, Store
from ocistore.mounts import is_mountpoint, mount
from ocistore.testing import Member, compress, load_image, make_tar, put_blob, sha256


def _layer(name: str, size: int = 10) -> tuple[bytes, str, str]:
    tar = make_tar([Member(name, data=os.urandom(size))])
    blob, mt = compress(tar, "gzip")
    return blob, mt, sha256(tar)


def test_gc_removes_unreferenced_layers_and_blobs(store: Store) -> None:
    good = _layer("good")
    with pytest.raises(DiffIDMismatchError):
        load_image(store, [good, (_layer("bad")[0], _layer("bad")[1], sha256(b"lie"))])
    # the good layer was unpacked before the bad one failed: stored, but no image uses it
    assert len(store.layers.all()) == 1
    kept = load_image(store, [_layer("kept")], ["r/kept:1"])
    stray = put_blob(store, "application/octet-stream", b"stray")
    assert store.gc() == (1, 0)  # young blobs survive the grace period
    assert store.has_blob(stray.digest)
    layers, blobs = store.gc(blob_grace=0)
    assert layers == 0 and blobs >= 4  # stray, the failed image's config, manifest, layers
    assert not store.has_blob(stray.digest)
    assert [layer.chain_id for layer in store.layers.all()] == list(kept.layers)
    image = store.image("r/kept:1")
    assert store.has_blob(image.id) and store.has_blob(image.manifest_digest)
    assert len(list(store.blobs.digests())) == 3
    assert len(os.listdir(store.root / "layers")) == 1


def test_repair_removes_planted_debris(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root, durable=False) as store:
        image = load_image(store, [_layer("a")], ["r/a:1"])
        layer = store.layers.get(image.layers[0])
        assert layer is not None
    (root / "tmp/blob-half").write_bytes(b"partial")
    (root / "tmp/layer-half/diff").mkdir(parents=True)
    (root / "layers" / ("f" * 64) / "diff").mkdir(parents=True)  # renamed, never recorded
    (root / "links/DANGLING00").symlink_to("../layers/nothing/diff")
    (root / "links" / layer.link).unlink()  # a recorded layer lost its link
    (root / "trash/old").mkdir()
    (root / "containers/half-made/upper").mkdir(parents=True)
    with Store.open(root, durable=False) as store:
        report = store.repair_report
        assert report.changed
        assert report.layers_removed == ["f" * 64]
        assert sorted(report.links_fixed) == sorted(["DANGLING00", layer.link])
        assert report.containers_removed == ["half-made"]
        assert len(report.temp_removed) == 3
        assert os.listdir(root / "tmp") == [] and os.listdir(root / "trash") == []
        assert (root / "links" / layer.link / "a").exists()
        assert store.image("r/a:1").layers == image.layers
    with Store.open(root, durable=False) as store:
        assert not store.repair_report.changed


@pytest.mark.root
def test_repair_unmounts_stale_mounts(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root, durable=False) as store:
        load_image(store, [_layer("a")], ["r/a:1"])
        store.create_container("keep", "r/a:1")
        kept = store.mount_container("keep")
    stale = root / "containers/ghost/merged"
    stale.mkdir(parents=True)
    mount("tmpfs", str(stale), "tmpfs", 0, "size=1m")
    try:
        with Store.open(root, durable=False) as store:
            assert str(stale) in store.repair_report.mounts_removed
            assert not is_mountpoint(str(stale))
            assert not (root / "containers/ghost").exists()
            # a mounted container the database knows is a running container: kept
            assert is_mountpoint(str(kept))
            store.remove_container("keep")
    finally:
        if is_mountpoint(str(stale)):
            os.system(f"umount {stale}")


def test_concurrent_pulls_store_shared_layers_once(store: Store) -> None:
    shared = [_layer(f"shared{i}", 300_000) for i in range(3)]
    own = [[_layer(f"own{k}", 100_000)] for k in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    images = []

    def pull(k: int) -> None:
        try:
            barrier.wait()
            images.append(load_image(store, [*shared, *own[k]], [f"r/img{k}:1"]))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=pull, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    a, b = store.image("r/img0:1"), store.image("r/img1:1")
    assert a.layers[:3] == b.layers[:3] and a.layers[3] != b.layers[3]
    assert len(store.layers.all()) == 5
    assert len(os.listdir(store.root / "layers")) == 5
    assert len(os.listdir(store.root / "links")) == 5
    for chain in a.layers[:3]:
        assert store.layers.users(chain) == 2


def test_gc_keeps_the_blobs_a_pull_sink_holds(store: Store) -> None:
    """A GC with no grace may run at any time: what a live pull holds stays."""
    data = b"being pulled"
    digest = sha256(data)
    with store.pull_sink() as sink:
        assert not sink.has_blob(digest)  # held from the first look on
        writer = sink.open_blob(
            Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))
        )
        writer.write(data)
        writer.commit()
        assert store.gc(blob_grace=0) == (0, 0)
        assert store.has_blob(digest)
        # A second pull that finds the blob present holds it as well.
        with store.pull_sink() as other:
            assert other.has_blob(digest)
            sink.release()
            assert store.gc(blob_grace=0) == (0, 0)
        # Released by both (and a second release changes nothing): now it is garbage.
        sink.release()
        assert store.gc(blob_grace=0) == (0, 1)
    assert not store.has_blob(digest)
