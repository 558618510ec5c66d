"""Blob store: verified on the way in, nothing visible on mismatch, atomic rename."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import pytest

from ocispec.image import Descriptor
from ocistore import BlobNotFoundError, DigestMismatchError, Store

MT = "application/octet-stream"


def test_write_commit_read(store: Store) -> None:
    desc = Descriptor.from_bytes(MT, b"hello world")
    writer = store.open_blob(desc)
    writer.write(b"hello ")
    assert writer.offset == 6
    assert not store.has_blob(desc.digest)
    writer.write(b"world")
    writer.commit()
    assert store.has_blob(desc.digest)
    assert store.blobs.read(desc.digest) == b"hello world"
    assert store.blobs.verify(desc.digest)
    assert os.listdir(store.root / "tmp") == []


def test_wrong_digest_leaves_nothing(store: Store) -> None:
    desc = Descriptor.from_bytes(MT, b"expected")
    writer = store.open_blob(desc)
    writer.write(b"Expected")
    with pytest.raises(DigestMismatchError, match="digest"):
        writer.commit()
    assert not store.has_blob(desc.digest)
    assert os.listdir(store.root / "tmp") == []


def test_short_and_long_content_refused(store: Store) -> None:
    desc = Descriptor.from_bytes(MT, b"12345")
    short = store.open_blob(desc)
    short.write(b"123")
    with pytest.raises(DigestMismatchError, match="3 bytes"):
        short.commit()
    long = store.open_blob(desc)
    with pytest.raises(DigestMismatchError, match="more than"):
        long.write(b"123456")
    assert not store.has_blob(desc.digest)
    assert os.listdir(store.root / "tmp") == []


def test_abort_is_idempotent(store: Store) -> None:
    desc = Descriptor.from_bytes(MT, b"x")
    writer = store.open_blob(desc)
    writer.write(b"x")
    writer.abort()
    writer.abort()
    assert not store.has_blob(desc.digest)
    assert os.listdir(store.root / "tmp") == []


def test_missing_blob(store: Store) -> None:
    with pytest.raises(BlobNotFoundError):
        store.blobs.read("sha256:" + "0" * 64)


def test_concurrent_writers_of_one_blob(store: Store) -> None:
    desc = Descriptor.from_bytes(MT, b"same")
    a, b = store.open_blob(desc), store.open_blob(desc)
    a.write(b"same")
    b.write(b"same")
    a.commit()
    b.commit()
    assert store.blobs.read(desc.digest) == b"same"
    assert list(store.blobs.digests()) == [desc.digest]


@pytest.mark.root
def test_full_disk_at_commit_leaves_nothing(tmp_path: Path) -> None:
    """A blob small enough to sit in the writer's buffer meets the full disk only when
    commit flushes it; the failed flush fails the close in abort too, and the temp file
    must go all the same (a pull aborts such a writer when its config cannot be stored)."""
    from ocistore.mounts import mount, umount

    fs = tmp_path / "fs"
    fs.mkdir()
    mount("tmpfs", str(fs), "tmpfs", 0, "size=2m")
    try:
        with Store.open(fs / "store", durable=False) as store:
            filler = fs / "filler"
            with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 4096)
            data = b"c" * 2048
            desc = Descriptor.from_bytes(MT, data)
            writer = store.open_blob(desc)
            writer.write(data)  # buffered: no error yet
            with pytest.raises(OSError) as info:
                writer.commit()
            assert info.value.errno == errno.ENOSPC
            writer.abort()  # what a caller does after a failed commit
            assert os.listdir(store.root / "tmp") == []
            assert not store.has_blob(desc.digest)
            filler.unlink()
            again = store.open_blob(desc)  # with room, the same blob commits
            again.write(data)
            again.commit()
            assert store.blobs.read(desc.digest) == data
    finally:
        umount(str(fs))


def test_a_large_buffer_reaches_the_file_in_32_kib_writes(store: Store) -> None:
    """No write to a blob's file is larger than 32 KiB: its page-cache folios are no
    larger (see ocistore._writes), and the blob is whole all the same."""
    data = os.urandom((1 << 20) + 100)
    desc = Descriptor.from_bytes(MT, data)
    writer = store.open_blob(desc)
    sizes: list[int] = []
    real = writer._fh
    assert real is not None

    class Recording:
        def write(self, piece: memoryview) -> int:
            sizes.append(len(piece))
            return real.write(piece)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    writer._fh = Recording()  # type: ignore[assignment]
    writer.write(data)
    writer.commit()
    assert max(sizes) == 32 << 10
    assert sum(sizes) == len(data)
    assert store.blobs.read(desc.digest) == data


def test_write_all_takes_up_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a short write left is written next, in pieces of at most 32 KiB."""
    from ocistore import _writes

    sizes: list[int] = []
    real_write = os.write

    def short(fd: int, piece: memoryview) -> int:
        sizes.append(len(piece))
        return real_write(fd, piece[: max(1, len(piece) - 1000)])

    monkeypatch.setattr(_writes.os, "write", short)
    data = os.urandom(100_000)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        _writes.write_all(fd, data)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    assert max(sizes) == 32 << 10
    assert len(sizes) > 4  # the short writes were taken up
