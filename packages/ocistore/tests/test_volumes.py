"""Image volumes on real overlay mounts (and the vfs copy): read-only, sub paths, release."""

from __future__ import annotations

import asyncio
import errno
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocistore import (
    AsyncStore,
    ImageInUseError,
    ImageNotFoundError,
    Store,
    SubPathError,
    SubPathNotFoundError,
)
from ocistore.mounts import MS_BIND, is_mountpoint, mount, mountpoints, umount
from ocistore.testing import Member, compress, load_built, load_image, make_tar, sha256

pytestmark = pytest.mark.root


def _options(path: Path) -> set[str]:
    """The per-mount and super block options of mount point ``path``."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == str(path):
            tail = fields[fields.index("-") + 1 :]
            return set(fields[5].split(",")) | set(tail[2].split(","))
    raise AssertionError(f"{path} is not mounted")


def _mounts_under(root: Path) -> list[str]:
    return sorted(m for m in mountpoints() if m.startswith(f"{root}/"))


def _links_image(store: Store) -> str:
    """Two layers with links that stay inside the image and links that try to leave."""
    lower = make_tar(
        [
            Member("data/", tarfile.DIRTYPE, mode=0o755),
            Member("data/f", data=b"in data"),
            Member("data/sub/", tarfile.DIRTYPE, mode=0o755),
            Member("data/sub/g", data=b"deeper"),
            Member("etc/", tarfile.DIRTYPE, mode=0o755),
            Member("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        ]
    )
    upper = make_tar(
        [
            Member("rel", tarfile.SYMTYPE, linkname="data/sub"),
            Member("abs", tarfile.SYMTYPE, linkname="/data"),
            Member("data/up", tarfile.SYMTYPE, linkname="../etc"),
            Member("escape", tarfile.SYMTYPE, linkname="../../../.."),
            Member("abs-escape", tarfile.SYMTYPE, linkname="/../etc"),
            Member("data/deep-escape", tarfile.SYMTYPE, linkname="../../etc"),
            Member("loop", tarfile.SYMTYPE, linkname="loop"),
            Member("dangling", tarfile.SYMTYPE, linkname="/nowhere"),
            Member("fifo", tarfile.FIFOTYPE),
        ]
    )
    layers = []
    for tar in (lower, upper):
        blob, media_type = compress(tar, "gzip")
        layers.append((blob, media_type, sha256(tar)))
    return load_image(store, layers, ["r/links:1"]).id


@pytest.fixture
def owner(store: Store, layered_image: object) -> Iterator[str]:
    """Container ``c`` (of the layered image) owning the volumes; removed afterwards."""
    load_built(store, layered_image, ["r/layered:1"])
    store.create_container("c", "r/layered:1")
    yield "c"
    for container in store.list_containers():
        store.remove_container(container.id)


def test_volume_is_the_image_read_only_and_released_with_its_container(
    store: Store, owner: str, layered_image: object, busybox_built: object
) -> None:
    image = load_built(store, busybox_built, ["r/busybox:1"])
    volume = store.mount_image_volume(owner, "r/layered:1")
    assert volume.source == volume.path and is_mountpoint(str(volume.path))
    assert volume.path.is_relative_to(store.container(owner).path)
    assert (volume.path / "data/keep.txt").read_text() == "kept from layer 2\n"
    assert sorted(os.listdir(volume.path / "opaque-dir")) == ["new.txt"]
    assert not (volume.path / "bin/wget").exists()  # the top layer's whiteout
    assert {"ro", "nosuid", "nodev"} <= _options(volume.path)
    for target in (volume.path / "new", volume.path / "data/keep.txt"):
        with pytest.raises(OSError) as err:
            target.write_text("no")
        assert err.value.errno == errno.EROFS
    other = store.mount_image_volume(owner, image.id, sub_path="bin")
    assert other.source == other.path / "bin" and (other.source / "busybox").is_file()
    assert [v.id for v in store.image_volumes(owner)] == [volume.id, other.id]
    assert store.image_volumes() == store.image_volumes(owner)

    with pytest.raises(ImageInUseError, match=f"image volume by container.*{owner}"):
        store.remove_image(image.id)
    store.remove_container(owner)
    assert not is_mountpoint(str(volume.path)) and not is_mountpoint(str(other.path))
    assert _mounts_under(store.root) == []
    assert os.listdir(store.root / "containers") == []
    assert os.listdir(store.root / "trash") == []
    assert store.image_volumes() == []
    assert store.remove_image(image.id)


def test_sub_paths_resolve_inside_the_image(store: Store, owner: str) -> None:
    image_id = _links_image(store)
    cases = {
        "data": "data",
        "./data//sub/": "data/sub",
        "data/f": "data/f",
        "rel": "data/sub",
        "abs/sub/g": "data/sub/g",
        "data/up/passwd": "etc/passwd",
    }
    for sub_path, resolved in cases.items():
        volume = store.mount_image_volume(owner, image_id, sub_path=sub_path)
        assert volume.source == volume.path / resolved, sub_path
        assert volume.sub_path == sub_path.strip("/").replace("//", "/").removeprefix("./")
        store.release_image_volume(volume.id)
        assert not volume.path.parent.exists()
    volume = store.mount_image_volume(owner, image_id, sub_path="data/f")
    assert volume.source.read_bytes() == b"in data"


@pytest.mark.parametrize(
    ("sub_path", "error", "message"),
    [
        ("missing", SubPathNotFoundError, "does not exist in the image"),
        ("data/f/x", SubPathNotFoundError, "is not a directory"),
        ("dangling", SubPathNotFoundError, "does not exist"),
        ("../etc", SubPathError, "must not contain '..'"),
        ("data/../../etc", SubPathError, "must not contain '..'"),
        ("/etc", SubPathError, "must be relative"),
        ("escape", SubPathError, "leads outside the image root"),
        ("abs-escape", SubPathError, "leads outside the image root"),
        ("data/deep-escape", SubPathError, "leads outside the image root"),
        ("loop", SubPathError, "too many levels of symbolic links"),
        ("fifo", SubPathError, "neither a directory nor a regular file"),
    ],
)
def test_bad_sub_paths_are_refused_and_leave_nothing(
    store: Store, owner: str, sub_path: str, error: type[Exception], message: str
) -> None:
    image_id = _links_image(store)
    with pytest.raises(error, match=message):
        store.mount_image_volume(owner, image_id, sub_path=sub_path)
    assert store.image_volumes() == []
    assert _mounts_under(store.root) == []
    assert not (store.container(owner).path / "volumes").exists() or not os.listdir(
        store.container(owner).path / "volumes"
    )
    assert os.listdir(store.root / "tmp") == []


def test_unknown_image_or_container_is_refused(store: Store, owner: str) -> None:
    with pytest.raises(ImageNotFoundError):
        store.mount_image_volume(owner, "r/none:1")
    with pytest.raises(KeyError, match="container nope not found"):
        store.mount_image_volume("nope", "r/layered:1")
    assert store.image_volumes() == [] and _mounts_under(store.root) == []


def test_vfs_volume_is_a_read_only_copy(tmp_path: Path, layered_image: object) -> None:
    with Store.open(tmp_path / "vfs", durable=False, driver="vfs") as store:
        load_built(store, layered_image, ["r/layered:1"])
        store.create_container("v", "r/layered:1")
        volume = store.mount_image_volume("v", "r/layered:1", sub_path="data")
        assert (volume.source / "keep.txt").read_text() == "kept from layer 2\n"
        assert not (volume.source / "remove-me.txt").exists()
        assert {"ro", "nosuid", "nodev"} <= _options(volume.path)
        with pytest.raises(OSError) as err:
            (volume.source / "new").write_text("no")
        assert err.value.errno == errno.EROFS
        store.remove_container("v")
        assert _mounts_under(store.root) == [] and os.listdir(store.root / "containers") == []


def test_repair_keeps_recorded_volumes_and_removes_the_rest(
    tmp_path: Path, layered_image: object
) -> None:
    root = tmp_path / "store"
    with Store.open(root, durable=False) as store:
        load_built(store, layered_image, ["r/layered:1"])
        store.create_container("c", "r/layered:1")
        kept = store.mount_image_volume("c", "r/layered:1", sub_path="data")
        lost = store.mount_image_volume("c", "r/layered:1")
    # A volume directory vanished under a record, and one no record owns is mounted.
    umount(str(lost.path))
    (lost.path / "..").resolve().rename(tmp_path / "moved")
    stray = root / "containers/c/volumes/stray/merged"
    stray.mkdir(parents=True)
    mount(str(kept.path), str(stray), "", MS_BIND, "")
    with Store.open(root, durable=False) as store:
        report = store.repair_report
        assert report.volume_records_dropped == [lost.id]
        assert report.volumes_removed == ["c/stray"] and str(stray) in report.mounts_removed
        assert [v.id for v in store.image_volumes()] == [kept.id]
        assert is_mountpoint(str(kept.path)) and (kept.source / "keep.txt").is_file()
        assert not stray.parent.exists()
        store.remove_container("c")
        assert _mounts_under(root) == []


def test_async_entry_points(store: Store, owner: str) -> None:
    async def run() -> None:
        astore = AsyncStore(store)
        volume = await astore.mount_image_volume(owner, "r/layered:1", sub_path="data")
        assert (volume.source / "added.txt").read_text() == "added by layer 3\n"
        assert await astore.image_volumes(owner) == [volume]
        await astore.release_image_volume(volume.id)
        assert await astore.image_volumes(owner) == []
        assert not is_mountpoint(str(volume.path))

    asyncio.run(run())
