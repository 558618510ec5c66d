"""The store database's transactions: durable ones fsync, the others only write, and a
killed process keeps both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocistore._db import Database

_FULL, _NORMAL = 2, 1


def _synchronous(db: Database) -> int:
    return int(db.scalar("PRAGMA synchronous"))


def test_a_non_durable_transaction_leaves_the_connection_durable(tmp_path: Path) -> None:
    db = Database(str(tmp_path / "store.db"))
    assert _synchronous(db) == _FULL
    with db.transaction(durable=False) as tx:
        assert int(tx.execute("PRAGMA synchronous").fetchone()[0]) == _NORMAL
        tx.execute("INSERT INTO layers VALUES ('a', 'd', NULL, 'la', 'b', 'm', 1, 1.0)")
    assert _synchronous(db) == _FULL
    with pytest.raises(RuntimeError), db.transaction(durable=False) as tx:
        tx.execute("INSERT INTO layers VALUES ('b', 'd', NULL, 'lb', 'b', 'm', 1, 1.0)")
        raise RuntimeError("rolled back")
    assert _synchronous(db) == _FULL
    assert db.query("SELECT chain_id FROM layers") == [("a",)]
    db.close()


def test_a_non_durable_commit_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    child = (
        "import os, sys\n"
        "from ocistore._db import Database\n"
        "db = Database(sys.argv[1])\n"
        "with db.transaction(durable=False) as tx:\n"
        "    tx.execute(\"INSERT INTO layers VALUES ('kept', 'd', NULL, 'k', 'b', 'm', 1, 1)\")\n"
        "os._exit(9)  # no close, no checkpoint: as a SIGKILL leaves it\n"
    )
    done = subprocess.run([sys.executable, "-c", child, str(path)], check=False)
    assert done.returncode == 9
    db = Database(str(path))
    assert db.query("SELECT chain_id FROM layers") == [("kept",)]
    db.close()
