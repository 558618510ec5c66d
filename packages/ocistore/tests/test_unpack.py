"""Unpacking layer tarballs into overlay-native directories."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from ocistore import (
    DiffIDMismatchError,
    IDMapping,
    LayerError,
    UnpackOptions,
    UnsupportedMediaTypeError,
    unpack_layer,
)
from ocistore.testing import Member, compress, make_tar, sha256

CAP = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service


def _unpack(tmp_path: Path, members: list[Member], kind: str = "gzip", **kw: object) -> Path:
    tar = make_tar(members)
    blob, media_type = compress(tar, kind)
    dest = tmp_path / "layer"
    dest.mkdir()
    result = unpack_layer(
        io.BytesIO(blob), str(dest), media_type=media_type, diff_id=sha256(tar), **kw
    )  # type: ignore[arg-type]
    assert result.diff_id == sha256(tar)
    assert result.size == len(tar)
    return dest


@pytest.mark.parametrize("kind", ["gzip", "zstd", "tar"])
def test_compressions(tmp_path: Path, kind: str) -> None:
    big = os.urandom(3 << 20)
    dest = _unpack(
        tmp_path,
        [Member("etc/", tarfile.DIRTYPE, mode=0o755), Member("etc/big", data=big)],
        kind,
    )
    assert (dest / "etc/big").read_bytes() == big


def test_docker_media_type(tmp_path: Path) -> None:
    tar = make_tar([Member("a", data=b"x")])
    blob, _ = compress(tar, "gzip")
    dest = tmp_path / "d"
    dest.mkdir()
    mt = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    unpack_layer(io.BytesIO(blob), str(dest), media_type=mt, diff_id=sha256(tar))
    assert (dest / "a").read_bytes() == b"x"


def test_unknown_media_type(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        unpack_layer(io.BytesIO(b""), str(tmp_path), media_type="application/json")


@pytest.mark.root
def test_metadata_preserved(tmp_path: Path) -> None:
    dest = _unpack(
        tmp_path,
        [
            Member("bin/", tarfile.DIRTYPE, mode=0o755, mtime=1_600_000_000),
            Member(
                "bin/ping",
                data=b"\x7fELF",
                mode=0o4755,
                uid=0,
                gid=0,
                pax={"SCHILY.xattr.security.capability": CAP.decode("latin-1")},
            ),
            Member("bin/sgid", data=b"g", mode=0o2711, uid=1000, gid=2000),
            Member("tmp/", tarfile.DIRTYPE, mode=0o1777),
            Member("home/u/", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000),
            Member("home/u/f", data=b"f", pax={"SCHILY.xattr.user.note": "hi"}, uid=1000),
            Member("bin/sh", tarfile.SYMTYPE, linkname="busybox", uid=5, gid=6),
            Member("bin/ping2", tarfile.LNKTYPE, linkname="bin/ping"),
            Member("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
            Member("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0),
            Member("run/fifo", tarfile.FIFOTYPE, mode=0o640),
        ],
        options=UnpackOptions(allow_devices=True),
    )
    ping = os.lstat(dest / "bin/ping")
    assert stat.S_IMODE(ping.st_mode) == 0o4755
    assert os.getxattr(dest / "bin/ping", "security.capability") != b""
    assert stat.S_IMODE(os.lstat(dest / "bin/sgid").st_mode) == 0o2711
    assert (os.lstat(dest / "bin/sgid").st_uid, os.lstat(dest / "bin/sgid").st_gid) == (1000, 2000)
    assert stat.S_IMODE(os.lstat(dest / "tmp").st_mode) == 0o1777
    assert os.lstat(dest / "home/u").st_uid == 1000
    assert stat.S_IMODE(os.lstat(dest / "home/u").st_mode) == 0o700
    assert os.getxattr(dest / "home/u/f", "user.note") == b"hi"
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert (os.lstat(dest / "bin/sh").st_uid, os.lstat(dest / "bin/sh").st_gid) == (5, 6)
    assert os.lstat(dest / "bin/ping2").st_ino == ping.st_ino
    null = os.lstat(dest / "dev/null")
    assert (
        stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    )
    assert stat.S_ISBLK(os.lstat(dest / "dev/sda").st_mode)
    assert stat.S_ISFIFO(os.lstat(dest / "run/fifo").st_mode)
    assert os.lstat(dest / "bin").st_mtime == 1_600_000_000
    assert os.lstat(dest / "home/u/f").st_mtime == 1_700_000_000
    # a directory created implicitly (no entry) is 0755
    assert stat.S_IMODE(os.lstat(dest / "dev").st_mode) == 0o755


@pytest.mark.root
def test_security_capability_bytes_exact(tmp_path: Path) -> None:
    dest = _unpack(
        tmp_path,
        [Member("p", data=b"x", pax={"SCHILY.xattr.security.capability": CAP.decode("latin-1")})],
    )
    # tarfile hands PAX values out as text; the raw bytes must survive the round trip
    raw = os.getxattr(dest / "p", "security.capability")
    assert raw == CAP.decode("latin-1").encode("utf-8", "surrogateescape")


@pytest.mark.root
def test_whiteouts_and_opaque_become_overlay_native(tmp_path: Path) -> None:
    dest = _unpack(
        tmp_path,
        [
            Member("data/.wh.gone"),
            Member("data/.wh..wh..opq"),
            Member("data/", tarfile.DIRTYPE, mode=0o750),
            Member("data/new", data=b"n"),
            Member("x/.wh..wh.plnk"),
        ],
    )
    wh = os.lstat(dest / "data/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "data", "trusted.overlay.opaque") == b"y"
    assert stat.S_IMODE(os.lstat(dest / "data").st_mode) == 0o750
    assert not (dest / "data/.wh.gone").exists()
    assert not (dest / "x").exists()  # AUFS metadata leaves nothing behind


def test_entries_replace_earlier_ones(tmp_path: Path) -> None:
    dest = _unpack(
        tmp_path,
        [
            Member("a/", tarfile.DIRTYPE),
            Member("a/f", data=b"1"),
            Member("a", tarfile.SYMTYPE, linkname="b"),
            Member("c", data=b"file"),
            Member("c/", tarfile.DIRTYPE),
            Member("c/d", data=b"2"),
            Member("e", data=b"old"),
            Member("e", data=b"new"),
        ],
    )
    assert os.readlink(dest / "a") == "b"
    assert (dest / "c/d").read_bytes() == b"2"
    assert (dest / "e").read_bytes() == b"new"


def test_id_mapping(tmp_path: Path) -> None:
    mapping = (IDMapping(container_id=0, host_id=100000, size=65536),)
    dest = _unpack(
        tmp_path,
        [Member("f", data=b"x", uid=0, gid=10), Member("g", data=b"y", uid=1000, gid=1000)],
        options=UnpackOptions(uid_map=mapping, gid_map=mapping),
    )
    assert (os.lstat(dest / "f").st_uid, os.lstat(dest / "f").st_gid) == (100000, 100010)
    assert os.lstat(dest / "g").st_uid == 101000


def test_unmapped_id_refused(tmp_path: Path) -> None:
    mapping = (IDMapping(container_id=0, host_id=100000, size=10),)
    with pytest.raises(LayerError, match="no mapping"):
        _unpack(tmp_path, [Member("f", uid=50)], options=UnpackOptions(uid_map=mapping))


def test_diff_id_mismatch(tmp_path: Path) -> None:
    tar = make_tar([Member("f", data=b"x")])
    blob, mt = compress(tar, "gzip")
    with pytest.raises(DiffIDMismatchError):
        unpack_layer(io.BytesIO(blob), str(tmp_path), media_type=mt, diff_id=sha256(b"other"))


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_corrupt_stream(tmp_path: Path, kind: str) -> None:
    tar = make_tar([Member("f", data=os.urandom(100_000))])
    blob, mt = compress(tar, kind)
    with pytest.raises(LayerError):
        unpack_layer(io.BytesIO(blob[: len(blob) // 2]), str(tmp_path), media_type=mt)


def test_layer_with_trailing_data_hashes_whole_stream(tmp_path: Path) -> None:
    tar = make_tar([Member("f", data=b"x")]) + b"\0" * 10240
    blob, mt = compress(tar, "tar")
    r = unpack_layer(io.BytesIO(blob), str(tmp_path), media_type=mt, diff_id=sha256(tar))
    assert r.size == len(tar)


def test_many_directories_and_cross_links(tmp_path: Path) -> None:
    """More directories than the fd cache holds, with hard links reaching across them."""
    n = 600
    members = [Member(f"d{i}/f", data=str(i).encode()) for i in range(n)]
    members += [Member(f"d{i}/h", tarfile.LNKTYPE, linkname=f"d{(i * 7) % n}/f") for i in range(n)]
    dest = _unpack(tmp_path, members)
    for i in range(n):
        target = dest / f"d{(i * 7) % n}/f"
        assert os.lstat(dest / f"d{i}/h").st_ino == os.lstat(target).st_ino
        assert (dest / f"d{i}/h").read_text() == str((i * 7) % n)
