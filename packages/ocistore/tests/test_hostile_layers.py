"""A corpus of hostile layers, each unpacked in a fresh process with its memory measured.

Every case must end in a clear ocistore error or a correct unpack; in both the
directory beside the layer stays untouched and the unpacking process's peak RSS
(VmHWM) grows by at most 64 MiB. Sparse files, huge PAX and GNU long-name headers,
floods of entries and deep paths join the classic escapes (``..``, absolute paths,
symlink-then-write, hard links out, whiteouts naming ``.``, ``..`` or nothing).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import _hostile as h

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
RSS_BUDGET_KIB = 64 << 10
CHILD = Path(__file__).with_name("unpack_child.py")
MiB = 1 << 20


@dataclass(frozen=True)
class Case:
    """A layer stream, the limits to unpack it with, and what must come of it."""

    tar: Callable[[Path], bytes | Iterable[bytes]]
    error: str | None = None
    match: str = ""
    limits: dict[str, int] = field(default_factory=dict)
    check: Callable[[Path], None] | None = None
    nofile: int = 0


def unpack_in_child(
    tmp_path: Path, blob: bytes, limits: dict[str, int], nofile: int = 0
) -> tuple[dict[str, object], Path]:
    (tmp_path / "blob").write_bytes(blob)
    dest = tmp_path / "layer"
    dest.mkdir()
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(tmp_path / "blob"), GZIP, str(dest),
         json.dumps(limits), str(nofile)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), dest


# -- the cases ------------------------------------------------------------------------

SEGMENTS = [(0, b"head" * 1024), (20 * MiB, b"middle" * 700), (50 * MiB - 5, b"tail!")]
SPARSE_SIZE = 50 * MiB


def _check_sparse(dest: Path) -> None:
    path = dest / "sparse"
    st = path.stat()
    assert st.st_size == SPARSE_SIZE
    assert st.st_blocks * 512 < 256 * 1024, f"holes were written: {st.st_blocks} blocks"
    expected = bytearray(SPARSE_SIZE)
    for off, data in SEGMENTS:
        expected[off : off + len(data)] = data
    assert path.read_bytes() == expected


def _sparse(fmt: str, size: int = SPARSE_SIZE, segments: h.Segments = SEGMENTS) -> bytes:
    return h.SPARSE_FORMATS[fmt]("sparse", size, segments) + h.END


def _pax_flood(kind: bytes) -> bytes:
    """3000 small PAX headers before one file: each is fine, together they are not."""
    heads = b"".join(h.pax([(f"comment.{i}", "x" * 900)], kind) for i in range(3000))
    return heads + h.regular("f", b"x") + h.END


BIG = 80 * MiB  # tarfile needs at least this much memory to read such a header


def _big_payload(head: bytes, tail: bytes = b"") -> Iterable[bytes]:
    """``head`` then BIG bytes of ``a`` then ``tail``, in chunks (the test stays small too)."""
    yield head
    chunk = b"a" * MiB
    for _ in range(BIG // MiB):
        yield chunk
    yield tail


def _long(kind: bytes) -> Iterable[bytes]:
    return _big_payload(h.header("././@LongLink", kind, BIG, magic=h.GNU))


def _huge_pax(_: Path) -> Iterable[bytes]:
    key = b" comment="
    body = len(key) + BIG + 1
    length = body + 1
    while len(str(length)) + body != length:
        length += 1
    yield h.header("PaxHeader", b"x", length)
    yield from _big_payload(str(length).encode() + key, b"\n" + bytes(-length % h.BLOCK))
    yield h.regular("f", b"x") + h.END


def _many_entries(_: Path) -> Iterable[bytes]:
    """200k entries (tarfile kept every one): 50k directories, whose times wait for the
    end, files, and AUFS markers, which cost the unpacker nothing but parsing."""
    one = h.directory("d") + h.regular("d/f", b"") + h.regular("d/.wh..wh.aufs", b"") * 2
    for _ in range(50_000):
        yield one
    yield h.END


def _check_many(dest: Path) -> None:
    assert sorted(os.listdir(dest)) == ["d"]
    assert os.listdir(dest / "d") == ["f"]
    assert (dest / "d").stat().st_mtime == h.MTIME


DEEP = "/".join(["a"] * 600)
FD_DEEP = "/".join(["b"] * 250)


def _bounded_fds(_: Path) -> bytes:
    """A 250-level path, then 600 sibling directories with links across them."""
    out = h.regular(FD_DEEP + "/deep", b"deep")
    for i in range(600):
        out += h.regular(f"d{i}/f", str(i).encode())
    for i in range(600):
        out += h.header(f"d{i}/h", b"1", linkname=f"d{(i * 7) % 600}/f".encode())
    return out + h.END


def _check_bounded_fds(dest: Path) -> None:
    assert (dest / FD_DEEP / "deep").read_bytes() == b"deep"
    assert (dest / "d5/h").read_text() == "35"


def _check_file(path: Path, data: bytes) -> None:
    assert path.read_bytes() == data


def _outside(tmp: Path) -> str:
    return str(tmp / "outside")


CASES: dict[str, Case] = {
    # 5. sparse files: holes stay holes and count against max_bytes
    **{
        f"sparse-{fmt}": Case(lambda _, f=fmt: _sparse(f), check=_check_sparse)  # type: ignore[misc]
        for fmt in h.SPARSE_FORMATS
    },
    **{
        f"sparse-{fmt}-over-max-bytes": Case(
            lambda _, f=fmt: _sparse(f),  # type: ignore[misc]
            "LayerLimitError",
            "sparse holes included",
            {"max_bytes": MiB},
        )
        for fmt in h.SPARSE_FORMATS
    },
    "sparse-petabyte": Case(
        lambda _: _sparse("pax-0.1", 1 << 50, [(0, b"x")]), "LayerLimitError", "max_bytes"
    ),
    "sparse-overlapping-segments": Case(
        lambda _: _sparse("pax-0.1", 4096, [(0, b"x" * 100), (50, b"y" * 100)]),
        "LayerError",
        "out of order",
    ),
    "sparse-segment-past-end": Case(
        lambda _: _sparse("gnu-old", 100, [(0, b"x"), (200, b"y")]), "LayerError", "out of"
    ),
    "sparse-gnu-map-flood": Case(
        lambda _: _sparse("gnu-old", 1 << 40, [(i * 4096, b"z") for i in range(100_000)]),
        "LayerLimitError",
        "max_header_bytes",
    ),
    "sparse-pax-1.0-map-flood": Case(
        lambda _: _sparse("pax-1.0", 1 << 40, [(i * 4096, b"z") for i in range(200_000)]),
        "LayerLimitError",
        "max_header_bytes",
    ),
    # 6. huge metadata headers are refused before they are read
    "pax-header-claims-1gib": Case(
        lambda _: h.header("PaxHeader", b"x", 1 << 30) + bytes(4096),
        "LayerLimitError",
        "PAX extended header of 1073741824 bytes",
    ),
    "pax-header-80mib": Case(_huge_pax, "LayerLimitError", "max_header_bytes"),
    "gnu-longname-80mib": Case(lambda _: _long(b"L"), "LayerLimitError", "GNU long name"),
    "gnu-longlink-80mib": Case(lambda _: _long(b"K"), "LayerLimitError", "GNU long link name"),
    "pax-header-chain": Case(lambda _: _pax_flood(b"x"), "LayerLimitError", "max_header_bytes"),
    "pax-global-flood": Case(lambda _: _pax_flood(b"g"), "LayerLimitError", "global PAX"),
    "pax-header-under-limit": Case(
        lambda _: h.pax([("comment", "a" * 900_000)]) + h.regular("f", b"ok") + h.END,
        check=lambda d: _check_file(d / "f", b"ok"),
    ),
    # 7. entry floods: nothing per entry stays in memory
    "200k-entries": Case(_many_entries, check=_check_many),
    "entries-over-max-entries": Case(
        _many_entries, "LayerLimitError", "max_entries", {"max_entries": 1000}
    ),
    # 8. deep paths: a depth limit, and descriptors bounded below it
    "path-600-deep": Case(
        lambda _: h.pax([("path", DEEP + "/f")]) + h.regular("x", b"x") + h.END,
        "LayerLimitError",
        "601 levels deep; the limit is 256",
    ),
    "hardlink-target-600-deep": Case(
        lambda _: h.pax([("linkpath", DEEP)]) + h.header("l", b"1") + h.END,
        "LayerLimitError",
        "max_depth",
    ),
    "deep-paths-with-200-fds": Case(_bounded_fds, check=_check_bounded_fds, nofile=200),
    # malformed metadata: a clear error, never an exception from deep inside
    "pax-mtime-infinite": Case(
        lambda _: h.pax([("mtime", "inf")]) + h.regular("f", b"x") + h.END,
        "LayerError",
        "malformed number",
    ),
    "uid-out-of-range": Case(
        lambda _: h.pax([("uid", str(1 << 40))]) + h.regular("f", b"x") + h.END,
        "LayerError",
        "unusable value",
    ),
    "bad-checksum": Case(
        lambda _: h.regular("f", b"x")[:148] + b"0000000\0" + h.regular("f", b"x")[156:],
        "LayerError",
        "bad header checksum",
    ),
    "stream-ends-in-data": Case(
        lambda _: h.header("f", b"0", 10 * MiB) + bytes(4096), "LayerError", "ends inside"
    ),
    # the classes handled before: nothing may leave the layer
    "dotdot": Case(
        lambda _: h.regular("../outside/victim", b"pwned") + h.END, "UnsafeLayerError", r"\.\."
    ),
    "absolute-path": Case(
        lambda t: h.pax([("path", _outside(t) + "/victim")]) + h.regular("x", b"in") + h.END,
        check=lambda d: _check_file(d / str(d.parent / "outside").lstrip("/") / "victim", b"in"),
    ),
    "symlink-then-write": Case(
        lambda t: (
            h.header("evil", b"2", linkname=_outside(t).encode())
            + h.regular("evil/victim", b"pwned")
            + h.END
        ),
        "UnsafeLayerError",
        "refusing to write through",
    ),
    "hardlink-out-of-layer": Case(
        lambda t: h.header("steal", b"1", linkname=(_outside(t) + "/victim").encode()) + h.END,
        "UnsafeLayerError",
        "not in this layer",
    ),
    "whiteout-dot": Case(
        lambda _: h.regular("a/.wh..", b"") + h.END, "UnsafeLayerError", "names no entry"
    ),
    "whiteout-dotdot": Case(
        lambda _: h.regular("a/.wh...", b"") + h.END, "UnsafeLayerError", "names no entry"
    ),
    "whiteout-empty": Case(
        lambda _: h.regular("a/.wh.", b"") + h.END, "UnsafeLayerError", "names no entry"
    ),
}


def _snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    found = {}
    for p in [path, *path.rglob("*")]:
        st = os.lstat(p)
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        found[str(p)] = (st.st_mode, st.st_mtime_ns, data)
    return found


@pytest.mark.root
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_layer(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious")
    before = _snapshot(outside)
    blob = h.gz(case.tar(tmp_path))
    assert len(blob) < 2 * MiB, "the corpus must stay small on disk"
    out, dest = unpack_in_child(tmp_path, blob, case.limits, case.nofile)
    if case.error is None:
        assert "error" not in out, out
        assert case.check is not None
        case.check(dest)
    else:
        assert out.get("error") == case.error, out
        assert case.match, "an expected error needs a message pattern"
        assert re.search(case.match, str(out["message"])), out["message"]
    growth = int(out["peak_after_kib"]) - int(out["peak_before_kib"])  # type: ignore[call-overload]
    assert growth <= RSS_BUDGET_KIB, f"peak RSS grew by {growth} KiB"
    assert _snapshot(outside) == before
    assert sorted(os.listdir(tmp_path)) == ["blob", "layer", "outside"]
