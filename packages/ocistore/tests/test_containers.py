"""Container root filesystems on real overlay mounts (root), and the vfs copy driver."""

from __future__ import annotations

import errno
import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from ocistore import ImageInUseError, Store
from ocistore.mounts import is_mountpoint
from ocistore.testing import Member, compress, load_built, load_image, make_tar, sha256

pytestmark = pytest.mark.root


def _check_tree(rootfs: Path, built: object) -> None:
    tree = built.tree  # type: ignore[attr-defined]
    for path, digest in tree.files.items():
        data = (rootfs / path).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest, path
    for path, target in tree.symlinks.items():
        assert os.readlink(rootfs / path) == target
    for path in tree.directories:
        assert (rootfs / path).is_dir(), path
    for path in tree.absent:
        assert not os.path.lexists(rootfs / path), path


def test_overlay_whiteouts_and_opaque(store: Store, layered_image: object) -> None:
    image = load_built(store, layered_image, ["r/layered:1"])
    c = store.create_container("c1", "r/layered:1")
    rootfs = store.mount_container("c1")
    assert rootfs == c.rootfs and is_mountpoint(str(rootfs))
    _check_tree(rootfs, layered_image)
    assert sorted(os.listdir(rootfs / "opaque-dir")) == ["new.txt"]
    assert not (rootfs / "bin/wget").exists()
    assert (rootfs / "data/keep.txt").read_text() == "kept from layer 2\n"
    store.mount_container("c1")  # idempotent
    store.unmount_container("c1")
    assert not is_mountpoint(str(rootfs))
    assert image.id == store.container("c1").image_id


def _xattr_image(store: Store) -> str:
    cap = bytes.fromhex("0100000200200000000000000000000000000000").decode("latin-1")
    tar = make_tar(
        [
            Member("bin/", tarfile.DIRTYPE, mode=0o755),
            Member(
                "bin/tool",
                data=b"tool",
                mode=0o755,
                pax={"SCHILY.xattr.security.capability": cap, "SCHILY.xattr.user.k": "v"},
            ),
            Member("bin/tool-link", tarfile.LNKTYPE, linkname="bin/tool"),
            Member("etc/", tarfile.DIRTYPE, mode=0o755),
            Member("etc/conf", data=b"lower"),
        ]
    )
    blob, mt = compress(tar, "zstd")
    top = make_tar([Member("etc/", tarfile.DIRTYPE, mode=0o755), Member("etc/top", data=b"t")])
    tblob, tmt = compress(top, "gzip")
    return load_image(store, [(blob, mt, sha256(tar)), (tblob, tmt, sha256(top))], ["r/x:1"]).id


def test_hardlinks_and_xattrs_survive(store: Store) -> None:
    _xattr_image(store)
    store.create_container("c", "r/x:1")
    rootfs = store.mount_container("c")
    a, b = os.stat(rootfs / "bin/tool"), os.stat(rootfs / "bin/tool-link")
    assert a.st_ino == b.st_ino and a.st_nlink == 2
    assert os.getxattr(rootfs / "bin/tool", "user.k") == b"v"
    assert len(os.getxattr(rootfs / "bin/tool", "security.capability")) == 20


def test_writes_land_in_upper_only(store: Store) -> None:
    image_id = _xattr_image(store)
    store.create_container("a", image_id)
    store.create_container("b", image_id)
    ra, rb = store.mount_container("a"), store.mount_container("b")
    (ra / "etc/conf").write_text("changed")
    (ra / "new").write_text("new file")
    (ra / "etc/top").unlink()
    assert (rb / "etc/conf").read_text() == "lower"
    assert not (rb / "new").exists() and (rb / "etc/top").exists()
    upper = store.container("a").path / "upper"
    assert (upper / "new").read_text() == "new file"
    assert (upper / "etc/conf").read_text() == "changed"
    assert os.lstat(upper / "etc/top").st_rdev == 0  # overlay's own whiteout
    for chain in store.image(image_id).layers:
        layer = store.layers.get(chain)
        assert layer is not None
        assert not (layer.path / "new").exists()
    conf = store.layers.get(store.image(image_id).layers[0])
    assert conf is not None and (conf.path / "etc/conf").read_text() == "lower"
    usage = store.container_usage("a")
    assert usage.inodes >= 4 and usage.bytes > 0
    assert store.usage().per_container["a"] == usage
    with pytest.raises(ImageInUseError, match=r"a, b|b, a"):
        store.remove_image(image_id)
    store.remove_container("a")
    assert not store.container("b").path.joinpath("upper/new").exists()
    assert not (store.root / "containers/a").exists()
    assert not is_mountpoint(str(ra))
    store.remove_container("b")
    assert store.remove_image(image_id)


def test_read_only_rootfs(store: Store) -> None:
    built_id = load_image(store, [_one_layer()], ["r/one:1"]).id
    store.create_container("ro", built_id, read_only=True)
    rootfs = store.mount_container("ro")
    assert (rootfs / "f").read_bytes() == b"one"
    with pytest.raises(OSError) as err:
        (rootfs / "g").write_text("no")
    assert err.value.errno == errno.EROFS


def _one_layer() -> tuple[bytes, str, str]:
    tar = make_tar([Member("f", data=b"one")])
    blob, mt = compress(tar, "tar")
    return blob, mt, sha256(tar)


def test_hundred_layers_fit_one_page(store: Store) -> None:
    layers = []
    for i in range(100):
        tar = make_tar(
            [Member(f"l{i:03d}", data=str(i).encode()), Member("top", data=str(i).encode())]
        )
        blob, mt = compress(tar, "gzip")
        layers.append((blob, mt, sha256(tar)))
    image = load_image(store, layers, ["r/deep:1"])
    assert len(image.layers) == 100
    c = store.create_container("deep-container-" + "x" * 48, image.id)
    opts = store.containers.overlay_options(c)
    assert len(opts) < 4096
    rootfs = store.mount_container(c.id)
    assert (rootfs / "l000").read_text() == "0"
    assert (rootfs / "l099").read_text() == "99"
    assert (rootfs / "top").read_text() == "99"
    ro = store.create_container("deep-ro", image.id, read_only=True)
    assert (store.mount_container(ro.id) / "l050").read_text() == "50"


def test_vfs_driver(tmp_path: Path, layered_image: object) -> None:
    with Store.open(tmp_path / "s", driver="vfs", durable=False) as s:
        load_built(s, layered_image, ["r/layered:1"])
        c = s.create_container("v", "r/layered:1")
        assert c.driver == "vfs"
        rootfs = s.mount_container("v")
        assert not is_mountpoint(str(rootfs))
        _check_tree(rootfs, layered_image)
        assert sorted(os.listdir(rootfs / "opaque-dir")) == ["new.txt"]
        (rootfs / "data/keep.txt").write_text("mine")
        top = s.layers.get(s.image("r/layered:1").layers[1])
        assert top is not None and (top.path / "data/keep.txt").read_text() != "mine"
        assert s.container_usage("v").inodes > 40
        s.remove_container("v")
        assert not c.path.exists()


def test_vfs_keeps_hardlinks_and_xattrs(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s", driver="vfs", durable=False) as s:
        _xattr_image(s)
        rootfs = s.create_container("v", "r/x:1").rootfs
        a, b = os.stat(rootfs / "bin/tool"), os.stat(rootfs / "bin/tool-link")
        assert a.st_ino == b.st_ino
        assert os.getxattr(rootfs / "bin/tool", "user.k") == b"v"
        assert len(os.getxattr(rootfs / "bin/tool", "security.capability")) == 20
        assert (rootfs / "etc/top").read_bytes() == b"t"


def test_vfs_copy_keeps_sparse_holes(tmp_path: Path) -> None:
    """A 50 MiB sparse file of a few KB on disk stays that in a vfs root filesystem."""
    from . import _hostile as h
    from .test_hostile_layers import SEGMENTS, SPARSE_SIZE, _check_sparse

    tar = h.sparse_pax_10("sparse", SPARSE_SIZE, SEGMENTS) + h.END
    with Store.open(tmp_path / "s", driver="vfs", durable=False) as s:
        blob, mt = compress(tar, "gzip")
        load_image(s, [(blob, mt, sha256(tar))], ["r/sparse:1"])
        rootfs = s.create_container("v", "r/sparse:1").rootfs
        _check_sparse(rootfs)


def test_auto_driver_picks_overlay_here(store: Store) -> None:
    assert store.containers.driver == "overlay"


def test_auto_driver_falls_back_to_vfs_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A store on overlayfs cannot use overlay (overlay refuses overlay as upper dir)."""
    from ocistore.mounts import mount, umount

    dirs = {d: tmp_path / d for d in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir()
    opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    mount("overlay", str(dirs["merged"]), "overlay", 0, opts)
    try:
        with Store.open(dirs["merged"] / "store", durable=False) as s:
            assert s.containers.driver == "vfs"
            assert "falling back to vfs" in caplog.text
            load_image(s, [_one_layer()], ["r/one:1"])
            c = s.create_container("v", "r/one:1")
            assert c.driver == "vfs" and (c.rootfs / "f").read_bytes() == b"one"
    finally:
        umount(str(dirs["merged"]))


def test_unmount_pops_stacked_mounts_and_never_follows_a_link(
    store: Store, layered_image: object, tmp_path: Path
) -> None:
    from ocistore.containers import unmount_path
    from ocistore.mounts import mount

    load_built(store, layered_image, ["r/stacked:1"])
    store.create_container("stacked", "r/stacked:1")
    rootfs = store.mount_container("stacked")
    mount("tmpfs", str(rootfs), "tmpfs", 0, "size=1m")  # a second mount on top
    store.mount_container("stacked")  # mounted already: nothing more is stacked
    store.unmount_container("stacked")
    assert not is_mountpoint(str(rootfs))
    store.unmount_container("stacked")  # nothing mounted: fine
    store.remove_container("stacked")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    mount("tmpfs", str(elsewhere), "tmpfs", 0, "size=1m")
    try:
        link = tmp_path / "link"
        link.symlink_to(elsewhere)
        unmount_path(link)
        assert is_mountpoint(str(elsewhere))
    finally:
        unmount_path(elsewhere)
    assert not is_mountpoint(str(elsewhere))
