"""OCI image layout import and export, and interoperability with umoci."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from ocistore import LayoutError, Store
from ocistore.testing import load_built


def _write_built_layout(built: object, root: Path, ref_name: str) -> None:
    """An OCI layout holding an ociimage.testing image, written by hand (no ocistore code)."""
    (root / "blobs/sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for blob in (built.config, *built.layers, built.manifest):  # type: ignore[attr-defined]
        (root / "blobs/sha256" / blob.digest.split(":")[1]).write_bytes(blob.data)
    entry = built.manifest.descriptor(  # type: ignore[attr-defined]
        annotations={"org.opencontainers.image.ref.name": ref_name}
    )
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def test_import_then_export_roundtrip(tmp_path: Path, layered_image: object) -> None:
    src = tmp_path / "src"
    _write_built_layout(layered_image, src, "127.0.0.1:5000/crid-test/layered:latest")
    with Store.open(tmp_path / "a", durable=False) as a:
        (image,) = a.import_layout(src)
        assert image.id == layered_image.config_digest  # type: ignore[attr-defined]
        assert image.names == ("127.0.0.1:5000/crid-test/layered:latest",)
        a.export_image(image.id, tmp_path / "out", name="v1")
    index = json.loads((tmp_path / "out/index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == layered_image.manifest_digest  # type: ignore[attr-defined]
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    for blob in (tmp_path / "out/blobs/sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    with Store.open(tmp_path / "b", durable=False) as b:
        (again,) = b.import_layout(tmp_path / "out", names=["r/again:1"])
        assert again.id == image.id and again.layers == image.layers


def test_import_index_selects_platform(tmp_path: Path) -> None:
    from ociimage.testing.images import multiplatform_index

    built = multiplatform_index()
    root = tmp_path / "l"
    (root / "blobs/sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    blobs = [built.index]
    for member in built.images:
        blobs += [member.config, *member.layers, member.manifest]
    for blob in blobs:
        (root / "blobs/sha256" / blob.digest.split(":")[1]).write_bytes(blob.data)
    entry = built.index.descriptor(annotations={"org.opencontainers.image.ref.name": "r/m:1"})
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    with Store.open(tmp_path / "s", durable=False) as s:
        (image,) = s.import_layout(root, platform="linux/arm64")
        arm = built.for_platform("arm64")
        assert image.id == arm.config_digest
        assert image.repo_digests == (f"r/m@{built.digest}",)
        assert s.image(built.digest).id == arm.config_digest


def test_import_refuses_a_non_layout(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", durable=False) as s, pytest.raises(LayoutError):
        s.import_layout(tmp_path)


def test_import_detects_corrupt_blob(tmp_path: Path, busybox_built: object) -> None:
    from ocistore import DigestMismatchError

    src = tmp_path / "src"
    _write_built_layout(busybox_built, src, "r/b:1")
    layer = busybox_built.layers[0]  # type: ignore[attr-defined]
    path = src / "blobs/sha256" / layer.digest.split(":")[1]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with Store.open(tmp_path / "s", durable=False) as s:
        with pytest.raises(DigestMismatchError):
            s.import_layout(src)
        assert s.list_images() == []


@pytest.mark.root
@pytest.mark.binaries("umoci")
def test_umoci_unpacks_what_we_export(tmp_path: Path, store: Store, layered_image: object) -> None:
    load_built(store, layered_image, ["r/layered:1"])
    store.export_image("r/layered:1", tmp_path / "layout", name="latest")
    subprocess.run(
        ["umoci", "unpack", "--image", f"{tmp_path / 'layout'}:latest", str(tmp_path / "bundle")],
        check=True,
        capture_output=True,
        env={"PATH": os.environ["PATH"]},
        timeout=120,
    )
    theirs = tmp_path / "bundle/rootfs"
    store.create_container("c", "r/layered:1")
    ours = store.mount_container("c")
    for dirpath, dirs, files in os.walk(theirs):
        rel = Path(dirpath).relative_to(theirs)
        for name in dirs + files:
            a, b = os.lstat(theirs / rel / name), os.lstat(ours / rel / name)
            assert (a.st_mode, a.st_uid, a.st_gid, a.st_size) == (
                b.st_mode,
                b.st_uid,
                b.st_gid,
                b.st_size,
            )
        assert sorted(dirs + files) == sorted(os.listdir(ours / rel)), rel
