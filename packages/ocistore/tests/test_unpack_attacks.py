"""Hand-made malicious layers: nothing may be written outside the layer's directory."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from ocistore import LayerLimitError, UnpackLimits, UnpackOptions, UnsafeLayerError, unpack_layer
from ocistore.testing import Member, compress, make_tar


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the layer that an attack would like to modify."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "victim").write_text("precious")
    return out


def _snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    found: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = os.lstat(p)
            data = p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            found[str(p.relative_to(path))] = (st.st_mode, data)
    return found


def _attack(tmp_path: Path, outside: Path, members: list[Member], **kw: object) -> Path:
    before = _snapshot(outside)
    blob, mt = compress(make_tar(members), "gzip")
    dest = tmp_path / "layer"
    dest.mkdir()
    try:
        unpack_layer(io.BytesIO(blob), str(dest), media_type=mt, **kw)  # type: ignore[arg-type]
    finally:
        assert _snapshot(outside) == before
        assert sorted(os.listdir(tmp_path)) == ["layer", "outside"]
    return dest


def test_dotdot_path(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError, match=r"\.\."):
        _attack(tmp_path, outside, [Member("../outside/victim", data=b"pwned")])


def test_dotdot_inside_path(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(tmp_path, outside, [Member("a/../../outside/new", data=b"pwned")])


def test_absolute_path_stays_inside(tmp_path: Path, outside: Path) -> None:
    dest = _attack(tmp_path, outside, [Member(f"{outside}/victim", data=b"pwned")])
    assert (dest / str(outside).lstrip("/") / "victim").read_bytes() == b"pwned"


def test_symlink_then_write_through(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError, match="refusing to write through"):
        _attack(
            tmp_path,
            outside,
            [
                Member("evil", tarfile.SYMTYPE, linkname=str(outside)),
                Member("evil/victim", data=b"pwned"),
            ],
        )


def test_relative_symlink_then_write_through(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(
            tmp_path,
            outside,
            [
                Member("evil", tarfile.SYMTYPE, linkname="../outside"),
                Member("evil/new", data=b"pwned"),
            ],
        )


def test_symlink_then_file_replaces_link_not_target(tmp_path: Path, outside: Path) -> None:
    dest = _attack(
        tmp_path,
        outside,
        [
            Member("evil", tarfile.SYMTYPE, linkname=str(outside / "victim")),
            Member("evil", data=b"pwned"),
        ],
    )
    assert (dest / "evil").read_bytes() == b"pwned"
    assert not (dest / "evil").is_symlink()


def test_hardlink_outside(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(tmp_path, outside, [Member("steal", tarfile.LNKTYPE, linkname="../outside/victim")])


def test_hardlink_absolute_outside(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError, match="not in this layer"):
        _attack(
            tmp_path, outside, [Member("steal", tarfile.LNKTYPE, linkname=str(outside / "victim"))]
        )


def test_hardlink_through_symlink(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(
            tmp_path,
            outside,
            [
                Member("evil", tarfile.SYMTYPE, linkname=str(outside)),
                Member("steal", tarfile.LNKTYPE, linkname="evil/victim"),
            ],
        )


def test_hardlink_to_symlink_links_the_symlink(tmp_path: Path, outside: Path) -> None:
    dest = _attack(
        tmp_path,
        outside,
        [
            Member("evil", tarfile.SYMTYPE, linkname=str(outside / "victim")),
            Member("twin", tarfile.LNKTYPE, linkname="evil"),
        ],
    )
    assert os.readlink(dest / "twin") == str(outside / "victim")


def test_whiteout_outside(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(tmp_path, outside, [Member("../outside/.wh.victim")])


def test_whiteout_dotdot_name(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError, match="names no entry"):
        _attack(tmp_path, outside, [Member("a/.wh..."), Member("a/.wh.")])


def test_whiteout_through_symlink(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(
            tmp_path,
            outside,
            [
                Member("evil", tarfile.SYMTYPE, linkname=str(outside)),
                Member("evil/.wh.victim"),
            ],
        )


def test_opaque_through_symlink(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        _attack(
            tmp_path,
            outside,
            [
                Member("evil", tarfile.SYMTYPE, linkname=str(outside)),
                Member("evil/.wh..wh..opq"),
            ],
        )
    assert "trusted.overlay.opaque" not in os.listxattr(outside)


def test_device_node_without_root_is_not_created(tmp_path: Path, outside: Path) -> None:
    dest = _attack(
        tmp_path,
        outside,
        [
            Member("dev/sda", tarfile.BLKTYPE, mode=0o666, devmajor=8, devminor=0),
            Member("dev/mem", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=1),
            Member("dev/ok", data=b"regular files still land"),
        ],
        options=UnpackOptions(allow_devices=False),
    )
    assert sorted(os.listdir(dest / "dev")) == ["ok"]


def test_overlay_xattrs_from_layer_are_dropped(tmp_path: Path, outside: Path) -> None:
    dest = _attack(
        tmp_path,
        outside,
        [
            Member(
                "d/",
                tarfile.DIRTYPE,
                pax={
                    "SCHILY.xattr.trusted.overlay.redirect": "/outside",
                    "SCHILY.xattr.trusted.overlay.opaque": "y",
                },
            )
        ],
    )
    assert not [x for x in os.listxattr(dest / "d") if x.startswith("trusted.overlay.")]


def test_decompression_bomb_bytes(tmp_path: Path, outside: Path) -> None:
    tar = make_tar([Member("zeros", data=b"\0" * (20 << 20))])
    blob = gzip.compress(tar)
    assert len(blob) < 100_000
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(LayerLimitError, match="more than"):
        unpack_layer(
            io.BytesIO(blob),
            str(dest),
            media_type="application/vnd.oci.image.layer.v1.tar+gzip",
            options=UnpackOptions(limits=UnpackLimits(max_bytes=1 << 20)),
        )


def test_decompression_bomb_entries(tmp_path: Path, outside: Path) -> None:
    with pytest.raises(LayerLimitError, match="entries"):
        _attack(
            tmp_path,
            outside,
            [Member(f"f{i}") for i in range(200)],
            options=UnpackOptions(limits=UnpackLimits(max_entries=100)),
        )
