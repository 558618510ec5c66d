"""ociimage.testing.layers: deterministic layer tarballs and the whiteout merge rules."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest

from ociimage.testing.layers import (
    FIXED_MTIME,
    build_layer,
    directory,
    file,
    hardlink,
    merge_layers,
    opaque,
    symlink,
    whiteout,
)


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
        return tar.getmembers()


def test_same_entries_give_same_digest_regardless_of_order() -> None:
    a = build_layer([file("b.txt", "b"), file("a/x.txt", "x"), symlink("c", "b.txt")])
    b = build_layer([symlink("c", "b.txt"), file("a/x.txt", "x"), file("b.txt", "b")])
    assert a.data == b.data
    assert a.digest == b.digest == "sha256:" + hashlib.sha256(a.data).hexdigest()
    assert a.size == len(a.data)
    assert a.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(a.data)).hexdigest()
    assert a.diff_id != a.digest


def test_members_are_sorted_rooted_owned_and_dated() -> None:
    layer = build_layer(
        [
            file("usr/bin/tool", b"\x7fELF", mode=0o755),
            file("home/app/own", "mine", uid=1000, gid=1001),
            symlink("usr/bin/alias", "tool"),
            hardlink("usr/bin/tool2", "usr/bin/tool"),
        ]
    )
    members = _members(layer.data)
    names = [m.name for m in members]
    assert names == sorted(names)
    # parents were added, before their children
    assert names[:2] == ["home", "home/app"]
    assert "usr" in names and "usr/bin" in names
    by_name = {m.name: m for m in members}
    assert all(not n.startswith(("/", "./")) for n in names)
    assert all(m.mtime == FIXED_MTIME for m in members)
    assert by_name["usr"].isdir() and by_name["usr"].mode == 0o755
    assert by_name["usr/bin/tool"].mode == 0o755 and by_name["usr/bin/tool"].uid == 0
    assert (by_name["home/app/own"].uid, by_name["home/app/own"].gid) == (1000, 1001)
    assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "tool"
    assert by_name["usr/bin/tool2"].islnk() and by_name["usr/bin/tool2"].linkname == "usr/bin/tool"
    assert all(m.uname == "" and m.gname == "" for m in members)


def test_gzip_header_has_no_name_or_time() -> None:
    data = build_layer([file("a", "a")]).data
    assert data[:2] == b"\x1f\x8b"
    flags, mtime = data[3], int.from_bytes(data[4:8], "little")
    assert flags & 0x08 == 0  # FNAME
    assert mtime == 0


def test_whiteout_and_opaque_marker_names() -> None:
    assert whiteout("/etc/motd").path == "etc/.wh.motd"
    assert whiteout("top").path == ".wh.top"
    assert opaque("var/cache/").path == "var/cache/.wh..wh..opq"
    layer = build_layer([whiteout("etc/motd"), opaque("var/cache")])
    names = [m.name for m in _members(layer.data)]
    assert names == ["etc", "etc/.wh.motd", "var", "var/cache", "var/cache/.wh..wh..opq"]


def test_duplicate_paths_and_dangling_hardlinks_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        build_layer([file("a", "1"), file("a", "2")])
    with pytest.raises(ValueError, match="outside"):
        build_layer([hardlink("a", "missing")])
    with pytest.raises(ValueError):
        file("/", "x")


def test_merge_applies_whiteouts_and_opaque_directories() -> None:
    lower = build_layer(
        [
            file("keep", "k"),
            file("gone", "g"),
            file("dir/inner", "i"),
            file("opq/old", "o"),
            file("opq/sub/deep", "d"),
            file("replaced", "file"),
        ]
    )
    upper = build_layer(
        [
            whiteout("gone"),
            whiteout("dir"),
            opaque("opq"),
            file("opq/new", "n"),
            directory("replaced"),
            file("replaced/child", "c"),
        ]
    )
    tree = merge_layers([lower, upper])
    assert set(tree) == {"keep", "opq", "opq/new", "replaced", "replaced/child"}
    assert tree["replaced"].kind == "dir"
    assert not any(".wh." in p for p in tree)


def test_opaque_marker_does_not_hide_its_own_layer() -> None:
    lower = build_layer([file("d/old", "o")])
    # the marker sorts before "d/a" but must not hide it
    upper = build_layer([file("d/a", "a"), opaque("d")])
    assert set(merge_layers([lower, upper])) == {"d", "d/a"}
