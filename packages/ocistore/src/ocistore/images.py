"""Image records: id (config digest), names, repo digests, layers; lookup and re-tagging."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ocistore._db import Database
from ocistore.errors import AmbiguousImageError, ImageNotFoundError

__all__ = ["Image", "ImageIndex", "repository_of"]

_HEX = re.compile(r"^[0-9a-f]{1,64}$")


def repository_of(reference: str) -> str:
    """``host/repo`` of ``host/repo:tag`` or ``host/repo@sha256:...``."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


@dataclass(frozen=True, kw_only=True)
class Image:
    """A stored image. ``id`` is its config digest; ``layers`` are chain IDs, bottom first."""

    id: str
    names: tuple[str, ...]
    repo_digests: tuple[str, ...]
    manifest_digest: str
    manifest_media_type: str
    index_digest: str | None
    layers: tuple[str, ...]
    size: int
    created: str
    added: float


class ImageIndex:
    """Reads and writes the image tables; writers pass the open transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _load(self, image_id: str) -> Image:
        rows = self._db.query(
            "SELECT manifest_digest, manifest_type, index_digest, size, created, added"
            " FROM images WHERE id = ?",
            (image_id,),
        )
        if not rows:
            raise ImageNotFoundError(f"image {image_id} not found")
        manifest_digest, manifest_type, index_digest, size, created, added = rows[0]
        names = self._db.query(
            "SELECT name FROM names WHERE image_id = ? ORDER BY name", (image_id,)
        )
        digests = self._db.query(
            "SELECT repo_digest FROM repo_digests WHERE image_id = ? ORDER BY repo_digest",
            (image_id,),
        )
        layers = self._db.query(
            "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY position", (image_id,)
        )
        return Image(
            id=image_id,
            names=tuple(r[0] for r in names),
            repo_digests=tuple(r[0] for r in digests),
            manifest_digest=manifest_digest,
            manifest_media_type=manifest_type,
            index_digest=index_digest,
            layers=tuple(r[0] for r in layers),
            size=size,
            created=created,
            added=added,
        )

    def list(self) -> list[Image]:
        return [self._load(r[0]) for r in self._db.query("SELECT id FROM images ORDER BY added")]

    def resolve(self, ref: str) -> str:
        """The image id ``ref`` names: id, id prefix, name, repo digest or manifest digest."""
        q = self._db.query
        for sql, arg in (
            ("SELECT id FROM images WHERE id = ?", ref),
            ("SELECT image_id FROM names WHERE name = ?", ref),
            ("SELECT image_id FROM repo_digests WHERE repo_digest = ?", ref),
            ("SELECT id FROM images WHERE manifest_digest = ? OR index_digest = ?", ref),
            ("SELECT id FROM images WHERE id = ?", "sha256:" + ref),
        ):
            params = (arg, arg) if sql.count("?") == 2 else (arg,)
            rows = q(sql, params)
            if rows:
                return str(rows[0][0])
        if "@" not in ref and ":" not in ref[ref.rfind("/") + 1 :]:
            rows = q("SELECT image_id FROM names WHERE name = ?", (ref + ":latest",))
            if rows:
                return str(rows[0][0])
        prefix = ref.removeprefix("sha256:")
        if _HEX.match(prefix):
            rows = q("SELECT id FROM images WHERE id LIKE ?", (f"sha256:{prefix}%",))
            if len(rows) > 1:
                raise AmbiguousImageError(f"image id prefix {ref!r} matches {len(rows)} images")
            if rows:
                return str(rows[0][0])
        raise ImageNotFoundError(f"image {ref!r} not found")

    def get(self, ref: str) -> Image:
        return self._load(self.resolve(ref))

    def record(
        self,
        tx: sqlite3.Connection,
        *,
        image_id: str,
        manifest_digest: str,
        manifest_media_type: str,
        index_digest: str | None,
        layers: Sequence[str],
        size: int,
        created: str,
        names: Sequence[str],
        repo_digests: Sequence[str],
    ) -> None:
        """Insert (or refresh) the image and move ``names`` onto it, in ``tx``."""
        tx.execute(
            "INSERT INTO images (id, manifest_digest, manifest_type, index_digest, size, created,"
            " added) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
            " manifest_digest = excluded.manifest_digest,"
            " manifest_type = excluded.manifest_type,"
            " index_digest = coalesce(excluded.index_digest, images.index_digest)",
            (image_id, manifest_digest, manifest_media_type, index_digest, size, created,
             time.time()),
        )  # fmt: skip
        tx.execute("DELETE FROM image_layers WHERE image_id = ?", (image_id,))
        tx.executemany(
            "INSERT INTO image_layers (image_id, position, chain_id) VALUES (?, ?, ?)",
            [(image_id, i, chain) for i, chain in enumerate(layers)],
        )
        tx.executemany(
            "INSERT INTO names (name, image_id) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            [(name, image_id) for name in names],
        )
        tx.executemany(
            "INSERT OR IGNORE INTO repo_digests (repo_digest, image_id) VALUES (?, ?)",
            [(d, image_id) for d in repo_digests],
        )

    def add_names(self, tx: sqlite3.Connection, image_id: str, names: Sequence[str]) -> None:
        """Point ``names`` at ``image_id``, taking them from whichever image had them."""
        tx.executemany(
            "INSERT INTO names (name, image_id) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            [(name, image_id) for name in names],
        )
