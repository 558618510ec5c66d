"""Unpacked layers: one directory per chain ID, stored once, shared by reference.

On disk a layer is ``layers/<chain-hex>/diff`` (the overlay-native tree) plus
``layers/<chain-hex>/link`` naming its short link ``links/<id>`` -> ``../layers/<hex>/diff``,
which keeps overlay mount options short. A layer is unpacked in ``tmp/``, renamed into
``layers/`` and only then recorded in the database, so a crash leaves either a complete,
recorded layer or debris that :mod:`ocistore.repair` deletes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ocispec.image import Descriptor
from ocistore._db import Database
from ocistore._sys import syncfs
from ocistore._unpack_types import UnpackOptions
from ocistore.blobs import BlobStore
from ocistore.errors import LayerError, StoreError

__all__ = ["Layer", "LayerStore", "chain_ids"]

log = logging.getLogger(__name__)

LINK_LEN = 10


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The image-spec ChainIDs of a stack of diff_ids, bottom first."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            text = f"{out[-1]} {diff_id}".encode()
            out.append("sha256:" + hashlib.sha256(text).hexdigest())
    return out


def _hex(chain_id: str) -> str:
    algo, _, encoded = chain_id.partition(":")
    if algo != "sha256" or len(encoded) != 64 or not all(c in "0123456789abcdef" for c in encoded):
        raise StoreError(f"invalid chain id {chain_id!r}")
    return encoded


@dataclass(frozen=True, kw_only=True)
class Layer:
    """A stored layer: identity, the blob it came from, its size and where it lives."""

    chain_id: str
    diff_id: str
    parent: str | None
    blob: str
    media_type: str
    size: int
    link: str
    path: Path


class LayerStore:
    """Creates, finds and deletes unpacked layers; one unpack per chain ID at a time."""

    def __init__(self, root: Path, db: Database, blobs: BlobStore, *, durable: bool = True) -> None:
        self.root = root
        self.dir = root / "layers"
        self.links = root / "links"
        self.tmp = root / "tmp"
        self.trash = root / "trash"
        self._db = db
        self._blobs = blobs
        self._durable = durable
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _lock_for(self, chain_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(chain_id, threading.Lock())

    def _row(self, row: tuple[object, ...]) -> Layer:
        chain_id, diff_id, parent, link, blob, media_type, size = row
        return Layer(
            chain_id=str(chain_id),
            diff_id=str(diff_id),
            parent=None if parent is None else str(parent),
            blob=str(blob),
            media_type=str(media_type),
            size=int(size),  # type: ignore[call-overload]
            link=str(link),
            path=self.dir / _hex(str(chain_id)) / "diff",
        )

    def get(self, chain_id: str) -> Layer | None:
        rows = self._db.query(
            "SELECT chain_id, diff_id, parent, link, blob, media_type, size FROM layers"
            " WHERE chain_id = ?",
            (chain_id,),
        )
        return self._row(rows[0]) if rows else None

    def all(self) -> list[Layer]:
        return [
            self._row(r)
            for r in self._db.query(
                "SELECT chain_id, diff_id, parent, link, blob, media_type, size FROM layers"
            )
        ]

    def _new_link(self) -> str:
        while True:
            link = base64.b32encode(secrets.token_bytes(10)).decode()[:LINK_LEN]
            if not os.path.lexists(self.links / link):
                return link

    def ensure(
        self,
        *,
        chain_id: str,
        parent: str | None,
        diff_id: str,
        blob: Descriptor,
        options: UnpackOptions,
    ) -> Layer:
        """The layer ``chain_id``, unpacked from ``blob`` unless it is stored already."""
        with self._lock_for(chain_id):
            found = self.get(chain_id)
            if found is not None:
                return found
            return self._unpack(
                chain_id=chain_id, parent=parent, diff_id=diff_id, blob=blob, options=options
            )

    def _unpack(
        self,
        *,
        chain_id: str,
        parent: str | None,
        diff_id: str,
        blob: Descriptor,
        options: UnpackOptions,
    ) -> Layer:
        from ocistore.unpack import unpack_layer  # the tar reader loads with the first layer

        started = time.monotonic()
        work = self.tmp / f"layer-{secrets.token_hex(8)}"
        (work / "diff").mkdir(parents=True)
        link_path: Path | None = None
        final = self.dir / _hex(chain_id)
        renamed = False
        try:
            with self._blobs.open(blob.digest) as fh:
                result = unpack_layer(
                    fh, str(work / "diff"), media_type=blob.media_type, diff_id=diff_id,
                    options=options,
                )  # fmt: skip
            link = self._new_link()
            (work / "link").write_text(link)
            # The link dangles until the rename below; repair drops unrecorded links.
            link_path = self.links / link
            link_path.symlink_to(f"../layers/{_hex(chain_id)}/diff")
            work.rename(final)
            renamed = True
            # One syncfs makes the tree, its link and the rename durable before the
            # record: a crash before it leaves an unrecorded directory, which repair
            # deletes (nothing uses a layer before it is recorded).
            if self._durable:
                fd = os.open(final, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    syncfs(fd)
                finally:
                    os.close(fd)
        except BaseException:
            shutil.rmtree(final if renamed else work, ignore_errors=True)
            if link_path is not None:
                link_path.unlink(missing_ok=True)
            raise
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO layers (chain_id, diff_id, parent, link, blob, media_type, size,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (chain_id, diff_id, parent, link, blob.digest, blob.media_type, result.size,
                 time.time()),
            )  # fmt: skip
        log.info(
            "unpacked layer chain_id=%s entries=%d bytes=%d seconds=%.3f",
            chain_id, result.entries, result.size, time.monotonic() - started,
        )  # fmt: skip
        layer = self.get(chain_id)
        if layer is None:
            raise LayerError(f"layer {chain_id} vanished after unpacking")
        return layer

    def users(self, chain_id: str) -> int:
        """How many images reference the layer (its reference count)."""
        return int(
            self._db.scalar("SELECT COUNT(*) FROM image_layers WHERE chain_id = ?", (chain_id,))
        )

    def delete_unreferenced(self, chain_ids: Sequence[str] | None = None) -> list[str]:
        """Delete layers no image references (all such, or only among ``chain_ids``)."""
        removed: list[Layer] = []
        with self._db.transaction() as tx:
            rows = tx.execute(
                "SELECT chain_id, diff_id, parent, link, blob, media_type, size FROM layers"
                " WHERE chain_id NOT IN"
                " (SELECT chain_id FROM image_layers)"
            ).fetchall()
            for row in rows:
                layer = self._row(row)
                if chain_ids is not None and layer.chain_id not in chain_ids:
                    continue
                if self._lock_for(layer.chain_id).locked():
                    continue
                tx.execute("DELETE FROM layers WHERE chain_id = ?", (layer.chain_id,))
                removed.append(layer)
        for layer in removed:
            self.discard_dir(layer.path.parent, layer.link)
            log.info("removed layer chain_id=%s", layer.chain_id)
        return [layer.chain_id for layer in removed]

    def discard_dir(self, path: Path, link: str | None) -> None:
        """Move a layer directory to the trash (one rename), then delete it."""
        if link:
            (self.links / link).unlink(missing_ok=True)
        if path.exists():
            dead = self.trash / secrets.token_hex(8)
            path.rename(dead)
            shutil.rmtree(dead, ignore_errors=True)
