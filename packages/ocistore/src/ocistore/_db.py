"""The store's SQLite metadata: schema, one connection, transactions.

Every change that must be all-or-nothing (an image with its names and layers, a
container record) is one ``BEGIN IMMEDIATE`` transaction; WAL mode keeps readers
unblocked and a killed process never leaves half a transaction behind. Opening checks
the file (``quick_check``) and refuses a damaged one with :class:`DatabaseCorruptError`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ocistore.errors import DatabaseCorruptError

__all__ = ["Database"]

log = logging.getLogger(__name__)
#: SQLITE_CORRUPT and SQLITE_NOTADB: the file is damaged or not a database at all.
_CORRUPT_CODES = frozenset({11, 26})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    chain_id   TEXT PRIMARY KEY,
    diff_id    TEXT NOT NULL,
    parent     TEXT,
    link       TEXT NOT NULL UNIQUE,
    blob       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id              TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_type   TEXT NOT NULL,
    index_digest    TEXT,
    size            INTEGER NOT NULL,
    created         TEXT NOT NULL,
    added           REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS names (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS repo_digests (
    repo_digest TEXT NOT NULL,
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (repo_digest, image_id)
);
CREATE TABLE IF NOT EXISTS containers (
    id        TEXT PRIMARY KEY,
    image_id  TEXT NOT NULL REFERENCES images(id),
    driver    TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    created   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_volumes (
    id           TEXT PRIMARY KEY,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    image_id     TEXT NOT NULL REFERENCES images(id),
    sub_path     TEXT NOT NULL,
    resolved     TEXT NOT NULL,
    created      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS image_volumes_container ON image_volumes(container_id);
CREATE INDEX IF NOT EXISTS image_volumes_image ON image_volumes(image_id);
"""


class Database:
    """One SQLite connection shared by the store's threads behind a lock."""

    def __init__(self, path: str) -> None:
        wal = Path(path + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            log.warning(
                "store database %s: replaying the write-ahead log an unclean stop left"
                " (%d bytes); a transaction it holds only in part is dropped",
                path,
                wal.stat().st_size,
            )
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._lock = threading.RLock()
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise DatabaseCorruptError(f"{path} is corrupt: {'; '.join(problems[:3])}")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as err:
            self._conn.close()
            code = getattr(err, "sqlite_errorcode", None)
            if isinstance(code, int) and code & 0xFF in _CORRUPT_CODES:
                raise DatabaseCorruptError(f"{path} is corrupt: {err}") from err
            raise
        except DatabaseCorruptError:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on error.

        ``durable=False`` commits without an fsync of the write-ahead log: the change
        survives a killed process (it is in the file) but may be lost with a power cut,
        until the next durable commit or checkpoint syncs the log and everything before
        it. For records that repair can lose safely (container root filesystems: their
        directories are then deleted, as they would be after any reboot's cleanup).
        """
        with self._lock:
            if not durable:
                self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            finally:
                if not durable:
                    self._conn.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a read-only statement."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None
