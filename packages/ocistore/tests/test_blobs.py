"""Blob store: verified on the way in, nothing visible on mismatch, atomic rename."""

from __future__ import annotations

import os

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
