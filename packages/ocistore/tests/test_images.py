"""Images: committed through the pull sink, looked up, re-tagged, removed; layers shared."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import ocistore.unpack as unpack_mod
from ocispec.image import Descriptor
from ocistore import (
    AmbiguousImageError,
    DiffIDMismatchError,
    ImageNotFoundError,
    Store,
    chain_ids,
)
from ocistore.testing import Member, compress, load_built, load_image, make_tar, put_blob, sha256


def _layer(name: str, data: bytes = b"x", kind: str = "gzip") -> tuple[bytes, str, str]:
    tar = make_tar([Member(name, data=data)])
    blob, mt = compress(tar, kind)
    return blob, mt, sha256(tar)


def test_commit_and_lookup(store: Store, layered_image: object) -> None:
    name = "127.0.0.1:5000/crid-test/layered:latest"
    image = load_built(store, layered_image, [name])
    built = layered_image
    assert image.id == built.config_digest  # type: ignore[attr-defined]
    assert image.names == (name,)
    assert image.repo_digests == (
        f"127.0.0.1:5000/crid-test/layered@{built.manifest_digest}",  # type: ignore[attr-defined]
    )
    assert image.layers == tuple(chain_ids(built.diff_ids))  # type: ignore[attr-defined]
    assert image.created == "2024-01-01T00:00:00Z"
    assert image.size > 2_000_000
    for ref in (
        image.id,
        image.id.removeprefix("sha256:"),
        image.id[7:19],
        name,
        "127.0.0.1:5000/crid-test/layered",
        image.repo_digests[0],
        image.manifest_digest,
    ):
        assert store.image(ref).id == image.id, ref
    with pytest.raises(ImageNotFoundError):
        store.image("nope:latest")
    assert store.image_config(name).config.cmd == ("sh",)
    assert len(store.image_manifest(name).layers) == 3
    # each layer directory is overlay-native
    top = store.layers.get(image.layers[2])
    assert top is not None
    assert os.getxattr(top.path / "opaque-dir", "trusted.overlay.opaque") == b"y"
    assert os.lstat(top.path / "bin/wget").st_rdev == os.makedev(0, 0)


def test_retag_moves_name(store: Store) -> None:
    a = load_image(store, [_layer("a")], ["reg/app:v1", "reg/app:latest"])
    b = load_image(store, [_layer("b")], ["reg/app:latest"])
    assert store.image("reg/app:latest").id == b.id
    assert store.image(a.id).names == ("reg/app:v1",)
    store.tag_image(a.id, "reg/app:latest", "reg/other:1")
    assert store.image("reg/app:latest").id == a.id
    assert store.image(b.id).names == ()
    assert store.image("reg/other:1").id == a.id


def test_pull_by_digest_without_names(store: Store) -> None:
    image = load_image(store, [_layer("a")], ["reg/app@sha256:" + "ab" * 32])
    assert image.names == ()
    assert image.repo_digests == ("reg/app@sha256:" + "ab" * 32,)
    assert store.image("reg/app@sha256:" + "ab" * 32).id == image.id


def test_repo_digest_added_after_a_nameless_pull(store: Store) -> None:
    image = load_image(store, [_layer("a")])
    assert image.names == () and image.repo_digests == ()
    ref = f"reg/app@{image.manifest_digest}"
    store.tag_image(image.manifest_digest, ref)
    assert store.image(ref).repo_digests == (ref,)
    assert store.image(ref).names == ()


def test_index_digest_is_the_repo_digest(store: Store) -> None:
    layer = _layer("a")
    image = load_image(store, [layer])
    index = put_blob(store, "application/vnd.oci.image.index.v1+json", b'{"schemaVersion":2}')
    store.commit_image(
        manifest=Descriptor(
            media_type=image.manifest_media_type,
            digest=image.manifest_digest,
            size=store.blobs.size(image.manifest_digest),
        ),
        names=["reg/multi:1"],
        index=index,
    )
    again = store.image("reg/multi:1")
    assert f"reg/multi@{index.digest}" in again.repo_digests
    assert store.image(index.digest).id == image.id


def test_ambiguous_prefix(store: Store) -> None:
    ids = [load_image(store, [_layer(f"f{i}")]).id for i in range(40)]
    first_chars = [i[7] for i in ids]
    dup = next(c for c in first_chars if first_chars.count(c) > 1)
    with pytest.raises(AmbiguousImageError):
        store.image(dup)
    unique = next(i for i in ids if first_chars.count(i[7]) == 1)
    assert store.image(unique[7:9]).id == unique


def test_shared_layers_stored_once(store: Store) -> None:
    base = _layer("base", os.urandom(1000))
    a = load_image(store, [base, _layer("a")], ["r/a:1"])
    b = load_image(store, [base, _layer("b")], ["r/b:1"])
    assert a.layers[0] == b.layers[0]
    assert store.layers.users(a.layers[0]) == 2
    assert len(os.listdir(store.root / "layers")) == 3
    assert store.remove_image("r/a:1") is True
    assert store.layers.get(a.layers[0]) is not None
    assert store.layers.get(a.layers[1]) is None
    assert len(os.listdir(store.root / "layers")) == 2
    assert store.layers.users(b.layers[0]) == 1


def test_diff_id_mismatch_refuses_image(store: Store) -> None:
    blob, mt, _ = _layer("a")
    with pytest.raises(DiffIDMismatchError):
        load_image(store, [(blob, mt, sha256(b"lie"))], ["r/bad:1"])
    assert store.list_images() == []
    assert store.layers.all() == []
    assert os.listdir(store.root / "layers") == []
    assert os.listdir(store.root / "tmp") == []


def test_remove_last_name_removes_image(store: Store) -> None:
    img = load_image(store, [_layer("a")], ["r/x:1", "r/x:2"])
    assert store.remove_image("r/x:1") is False
    assert store.image(img.id).names == ("r/x:2",)
    assert store.remove_image("r/x:2") is True
    assert store.list_images() == []
    assert list(store.blobs.digests()) == []
    assert os.listdir(store.root / "layers") == []
    assert os.listdir(store.root / "links") == []


def test_independent_layers_unpack_in_parallel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record which threads unpack: with several layers more than one thread works."""
    seen: set[str] = set()
    real = unpack_mod.unpack_layer

    def spy(*args: object, **kw: object) -> object:
        seen.add(threading.current_thread().name)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(unpack_mod, "unpack_layer", spy)  # looked up at each unpack
    with Store.open(tmp_path / "s", durable=False, workers=4) as s:
        load_image(s, [_layer(f"l{i}", os.urandom(200_000)) for i in range(6)])
    assert len(seen) > 1
    assert all(name.startswith("ocistore-unpack") for name in seen)
