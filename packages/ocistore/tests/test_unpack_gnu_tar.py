"""Layers written by GNU tar itself, in each of its sparse and long-name formats."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from ocistore import unpack_layer

LONG = "/".join(["a-rather-long-directory-name"] * 6) + "/file-with-a-long-name.txt"
REAL = 8 << 20


def _tree(src: Path) -> None:
    (src / LONG).parent.mkdir(parents=True)
    (src / LONG).write_text("long name")
    with (src / "sparse").open("wb") as fh:
        fh.write(b"start")
        fh.seek(3 << 20)
        fh.write(b"middle" * 1000)
        fh.truncate(REAL)
    os.link(src / "sparse", src / "sparse-link")
    os.symlink(LONG, src / "to-long")


@pytest.mark.binaries("tar")
@pytest.mark.parametrize(
    "args",
    [
        ["--format=gnu"],
        ["--format=posix", "--sparse-version=0.0"],
        ["--format=posix", "--sparse-version=0.1"],
        ["--format=posix", "--sparse-version=1.0"],
    ],
    ids=["gnu", "pax-0.0", "pax-0.1", "pax-1.0"],
)
def test_gnu_tar_sparse_and_long_names(tmp_path: Path, args: list[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    tar = subprocess.run(
        ["tar", "-C", str(src), "--sparse", *args, "-cf", "-", "."],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_layer(io.BytesIO(tar), str(dest), media_type="application/vnd.oci.image.layer.v1.tar")
    assert (dest / LONG).read_text() == "long name"
    assert os.readlink(dest / "to-long") == LONG
    got = dest / "sparse"
    assert got.read_bytes() == (src / "sparse").read_bytes()
    st = got.stat()
    assert st.st_size == REAL and st.st_blocks * 512 < (1 << 20)
    assert os.stat(dest / "sparse-link").st_ino == st.st_ino
