"""The state database: pods and containers in SQLite, so a crid restart loses nothing.

One row per record, its JSON encoding in ``data``; names are UNIQUE so a reservation
survives a crash. WAL mode with ``synchronous=NORMAL``: a commit is durable against a
crid crash (the file is written before the call returns) without an fsync per write.
All methods are blocking; ``crid.state.registry`` calls them from one worker thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from crid.errors import StateError
from crid.state.models import Container, Sandbox

__all__ = ["StateDB"]

_log = logging.getLogger(__name__)
#: SQLITE_CORRUPT and SQLITE_NOTADB: the file is damaged or not a database at all.
_CORRUPT_CODES = frozenset({11, 26})


def _corrupt(err: sqlite3.Error) -> bool:
    """Whether SQLite says the file is damaged (not busy, full or unreadable)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _CORRUPT_CODES


def _busy(err: BaseException | None) -> bool:
    """Whether SQLite answered SQLITE_BUSY (a lock another connection holds)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_BUSY


_SQLITE_BUSY = 5
#: How long a write waits for a lock another connection holds (sqlite3's default).
_BUSY_TIMEOUT_MS = 5000
_T = TypeVar("_T", Sandbox, Container)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sandboxes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    sandbox_id TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_by_sandbox ON containers (sandbox_id);
"""


_REFUSE = (
    "crid does not start on it, so it never serves pods or containers it no longer knows"
    " correctly: restore a backup, or move the file aside to start with no records"
    " (containers still running are then unknown to crid)"
)


class StateDB:
    """Durable storage of every sandbox and container record.

    Opening checks the file (SQLite's ``quick_check``) and refuses a corrupt one with a
    :class:`StateError` saying so; a write-ahead log left by a crash is replayed by
    SQLite up to its last complete transaction, and the log says it was.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        #: Held by every statement; re-entrant, as :meth:`try_now` holds it around writes.
        self.lock = threading.RLock()
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            _log.warning(
                "state database %s: replaying the write-ahead log an unclean stop left"
                " (%d bytes); a transaction it holds only in part is dropped",
                path,
                wal.stat().st_size,
            )
        try:
            self._conn = sqlite3.connect(
                path,
                check_same_thread=False,
                isolation_level=None,
                timeout=_BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.Error as err:
            raise StateError(f"cannot open state database {path}: {err}") from err
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                raise StateError(
                    f"state database {path} is corrupt ({'; '.join(problems[:3])}): {_REFUSE}"
                )
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as err:
            self._conn.close()
            if not _corrupt(err):
                raise StateError(f"cannot open state database {path}: {err}") from err
            raise StateError(f"state database {path} is corrupt ({err}): {_REFUSE}") from err
        except StateError:
            self._conn.close()
            raise
        self._encoder = msgspec.json.Encoder()

    def try_now(self, write: Callable[[], None]) -> bool:
        """Run ``write`` (calls of this object's write methods) at once if nothing holds
        the database: False, having written nothing, when another thread holds it, or
        SQLite answers busy (another process writes) — it never waits for either.
        """
        if not self.lock.acquire(blocking=False):
            return False
        try:
            self._conn.execute("PRAGMA busy_timeout=0")
            try:
                write()
            except StateError as err:
                if _busy(err.__cause__):
                    return False
                raise
            finally:
                self._conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            return True
        finally:
            self.lock.release()

    def checkpoint_manually(self) -> None:
        """Leave checkpoints to :meth:`checkpoint` calls instead of the writing call that
        crosses SQLite's threshold (a checkpoint fsyncs the database)."""
        with self.lock:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database where no reader needs it (blocking:
        it fsyncs)."""
        try:
            with self.lock:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as err:
            raise StateError(f"state database {self.path}: checkpoint: {err}") from err

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def _load(self, table: str, kind: type[_T]) -> list[_T]:
        decoder = msgspec.json.Decoder(kind)
        with self.lock:
            try:
                rows = self._conn.execute(f"SELECT id, data FROM {table}").fetchall()  # noqa: S608
            except sqlite3.Error as err:
                what = "is corrupt" if _corrupt(err) else "cannot be read"
                raise StateError(f"state database {self.path} {what} ({err}): {_REFUSE}") from err
        records = []
        for record_id, data in rows:
            try:
                records.append(decoder.decode(data))
            except msgspec.DecodeError as err:
                raise StateError(
                    f"state database {self.path}: record {record_id} of {table} is"
                    f" unreadable ({err}): {_REFUSE}"
                ) from err
        return records

    def sandboxes(self) -> list[Sandbox]:
        """Every stored sandbox."""
        return self._load("sandboxes", Sandbox)

    def containers(self) -> list[Container]:
        """Every stored container."""
        return self._load("containers", Container)

    def put_sandbox(self, sandbox: Sandbox) -> None:
        """Insert or replace a sandbox."""
        self._write(
            "INSERT OR REPLACE INTO sandboxes (id, name, data) VALUES (?, ?, ?)",
            (sandbox.id, sandbox.name, self._encoder.encode(sandbox)),
        )

    def put_container(self, container: Container) -> None:
        """Insert or replace a container."""
        self._write(
            "INSERT OR REPLACE INTO containers (id, sandbox_id, name, data) VALUES (?, ?, ?, ?)",
            (
                container.id,
                container.sandbox_id,
                container.name,
                self._encoder.encode(container),
            ),
        )

    def delete_sandbox(self, sandbox_id: str) -> None:
        """Forget a sandbox (its containers must have gone first)."""
        self._write("DELETE FROM sandboxes WHERE id = ?", (sandbox_id,))

    def delete_container(self, container_id: str) -> None:
        """Forget a container."""
        self._write("DELETE FROM containers WHERE id = ?", (container_id,))

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            with self.lock:
                self._conn.execute(sql, params)
        except sqlite3.Error as err:
            raise StateError(f"state database {self.path}: {err}") from err
