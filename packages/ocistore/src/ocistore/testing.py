"""Helpers for testing code that uses ocistore: hand-made layer tarballs and sink-loaded images.

:func:`make_tar` writes members exactly as given (no path cleaning, no sorting), so it
can make the malicious layers a safe unpacker must refuse; :func:`load_image` pushes
layers, a config and a manifest through the pull sink as ociimage would.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import zstandard

from ocispec.image import Descriptor
from ocistore.images import Image
from ocistore.sink import StorePullSink
from ocistore.store import Store

__all__ = ["Member", "compress", "load_built", "load_image", "make_tar", "put_blob", "sha256"]


@dataclass
class Member:
    """One hand-made tar member; ``kind`` is a tarfile type constant."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = 1_700_000_000
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, str] = field(default_factory=dict)


def make_tar(members: Sequence[Member]) -> bytes:
    """An uncompressed PAX tar of ``members`` exactly as given (no cleaning, no sorting)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.uid, info.gid = m.uid, m.gid
            info.mtime = m.mtime
            info.linkname = m.linkname
            info.devmajor, info.devminor = m.devmajor, m.devminor
            info.pax_headers = dict(m.pax)
            info.size = len(m.data) if m.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(m.data) if m.kind == tarfile.REGTYPE else None)
    return raw.getvalue()


def compress(tar: bytes, kind: str) -> tuple[bytes, str]:
    """(blob, media type) of ``tar`` compressed with ``kind`` (gzip, zstd or tar)."""
    if kind == "gzip":
        return gzip.compress(tar, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if kind == "zstd":
        data = zstandard.ZstdCompressor().compress(tar)
        return data, "application/vnd.oci.image.layer.v1.tar+zstd"
    return tar, "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(
    store: Store, media_type: str, data: bytes, *, sink: StorePullSink | None = None
) -> Descriptor:
    """Write a blob the way ociimage does: through a sink's writer (``sink``, else one
    released at once, so the blob is garbage unless an image comes to use it)."""
    desc = Descriptor.from_bytes(media_type, data)
    with store.pull_sink() as own:
        use = sink or own
        if not use.has_blob(desc.digest):
            writer = use.open_blob(desc)
            writer.write(data)
            writer.commit()
    return desc


def load_image(
    store: Store,
    layers: Sequence[tuple[bytes, str, str]],
    names: Sequence[str] = (),
    *,
    config_extra: dict[str, object] | None = None,
) -> Image:
    """Push (blob, media type, diff_id) layers, a config and a manifest through the sink."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": [d for _, _, d in layers]},
        **(config_extra or {}),
    }
    with store.pull_sink() as sink:
        cdesc = put_blob(
            store,
            "application/vnd.oci.image.config.v1+json",
            json.dumps(config).encode(),
            sink=sink,
        )
        ldescs = [put_blob(store, mt, blob, sink=sink) for blob, mt, _ in layers]
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cdesc.to_dict(),
            "layers": [d.to_dict() for d in ldescs],
        }
        mdesc = put_blob(
            store,
            "application/vnd.oci.image.manifest.v1+json",
            json.dumps(manifest).encode(),
            sink=sink,
        )
        sink.commit_image(manifest=mdesc, names=names)
    assert sink.image is not None
    return sink.image


def built_layers(built: object) -> list[tuple[bytes, str, str]]:
    """The layers of an ``ociimage.testing`` BuiltImage as load_image wants them."""
    return [(layer.data, layer.media_type, layer.diff_id) for layer in built.layers]  # type: ignore[attr-defined]


def load_built(store: Store, built: object, names: Sequence[str] = ()) -> Image:
    """Load an ``ociimage.testing`` BuiltImage through the sink, with its exact blobs."""
    blobs = [built.config, *built.layers, built.manifest]  # type: ignore[attr-defined]
    with store.pull_sink() as sink:
        for blob in blobs:
            desc = Descriptor(media_type=blob.media_type, digest=blob.digest, size=blob.size)
            if not sink.has_blob(desc.digest):
                w = sink.open_blob(desc)
                w.write(blob.data)
                w.commit()
        m = built.manifest  # type: ignore[attr-defined]
        sink.commit_image(
            manifest=Descriptor(media_type=m.media_type, digest=m.digest, size=m.size),
            names=names,
        )
    assert sink.image is not None
    return sink.image
