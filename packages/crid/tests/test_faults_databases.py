"""Corrupt databases: crid's state.db and ocistore's store.db damaged for real.

Garbage over the header or over a page, a truncated file, an undecodable record: crid
refuses to start and says which file is corrupt (never serving wrong state). A
write-ahead log torn by a crash is replayed up to its last whole transaction, and the
log says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crid.errors import StateError
from crid.server import Daemon
from crid.state import PodMeta, Sandbox, SandboxState
from crid.state.db import StateDB
from ociimage.testing import busybox_image
from ocistore import Store
from ocistore.errors import DatabaseCorruptError
from ocistore.testing import load_built

from .conftest import make_config

PAGE = 4096


def _sandbox(number: int) -> Sandbox:
    meta = PodMeta(name=f"pod-{number}", uid=f"uid-{number}", namespace="ns")
    return Sandbox(
        id=f"{number:064x}",
        name=f"k8s_pod-{number}_ns_uid-{number}_0",
        meta=meta,
        state=SandboxState.READY,
        created_at=time.time_ns(),
        annotations={"note": "x" * 400},
    )


def _state_db(path: Path, count: int = 200) -> None:
    db = StateDB(path)
    try:
        for number in range(count):
            db.put_sandbox(_sandbox(number))
    finally:
        db.close()


def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    assert size > 8 * PAGE, "the database should span several pages"
    with path.open("r+b") as handle:
        if how == "header":
            handle.write(os.urandom(100))
        elif how == "page":
            handle.seek(3 * PAGE)
            handle.write(os.urandom(PAGE))
        elif how == "truncated":
            handle.truncate(size // 2 + 123)
        else:
            raise AssertionError(how)


@pytest.mark.parametrize("how", ["header", "page", "truncated"])
def test_fault_corrupt_state_db_is_refused(tmp_path: Path, how: str) -> None:
    path = tmp_path / "state.db"
    _state_db(path)
    _damage(path, how)
    with pytest.raises(StateError, match=r"state\.db is corrupt") as info:
        StateDB(path)
    assert "does not start" in str(info.value)


def test_fault_undecodable_state_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _state_db(path, count=3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE sandboxes SET data = ? WHERE id = ?", (b"{not json", f"{1:064x}"))
    db = StateDB(path)
    try:
        with pytest.raises(StateError, match=f"record {1:064x} of sandboxes is unreadable"):
            db.sandboxes()
    finally:
        db.close()


def _crash_copy(source: Path, target: Path) -> None:
    """What a SIGKILL leaves: the database and its WAL as they are, not checkpointed."""
    target.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{source}{suffix}", f"{target / source.name}{suffix}")


def test_fault_torn_wal_is_replayed_to_its_last_transaction(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "live" / "state.db"
    db = StateDB(path)
    try:
        db._conn.execute("PRAGMA wal_autocheckpoint=0")  # keep every frame in the WAL
        db.put_sandbox(_sandbox(1))
        after_first = Path(f"{path}-wal").stat().st_size
        db.put_sandbox(_sandbox(2))
        after_second = Path(f"{path}-wal").stat().st_size
        assert after_second > after_first
        _crash_copy(path, tmp_path / "torn")
        _crash_copy(path, tmp_path / "tail")
    finally:
        db.close()
    torn = tmp_path / "torn" / "state.db"
    with open(f"{torn}-wal", "r+b") as handle:  # the second commit written halfway
        handle.truncate((after_first + after_second) // 2)
    tail = tmp_path / "tail" / "state.db"
    with open(f"{tail}-wal", "ab") as handle:  # a frame cut off after the last commit
        handle.write(os.urandom(PAGE // 2))
    with caplog.at_level(logging.WARNING, logger="crid.state.db"):
        replayed = StateDB(torn)
        try:
            assert [s.id for s in replayed.sandboxes()] == [f"{1:064x}"]
        finally:
            replayed.close()
        assert "replaying the write-ahead log" in caplog.text
        whole = StateDB(tail)
        try:
            assert sorted(s.id for s in whole.sandboxes()) == [f"{1:064x}", f"{2:064x}"]
        finally:
            whole.close()


def _store_with_image(root: Path) -> Path:
    store = Store.open(root)
    try:
        load_built(store, busybox_image(), ["crid-test/busybox:latest"])
        for number in range(60):  # enough metadata to span pages
            store.tag_image("crid-test/busybox:latest", f"crid-test/name-{number:03d}:" + "t" * 80)
    finally:
        store.close()
    return root / "store.db"


@pytest.mark.root
@pytest.mark.parametrize("how", ["header", "page", "truncated"])
async def test_fault_corrupt_store_db_is_refused_at_start(tmp_path: Path, how: str) -> None:
    _, config = make_config(tmp_path)
    store_db = _store_with_image(Path(config.crid.root) / "storage")
    _damage(store_db, how)
    with pytest.raises(DatabaseCorruptError, match=r"store\.db is corrupt"):
        Store.open(store_db.parent)
    daemon = Daemon(config)
    with pytest.raises(StateError, match=r"image store database .*store\.db is corrupt"):
        await daemon.start()
    assert not Path(config.crid.api.listen).exists()


@pytest.mark.root
@pytest.mark.parametrize("which", ["state", "store"])
def test_fault_crid_serve_exits_naming_the_corrupt_database(tmp_path: Path, which: str) -> None:
    config_file, config = make_config(tmp_path)
    root = Path(config.crid.root)
    if which == "state":
        _state_db(root / "state.db")
        damaged = root / "state.db"
    else:
        damaged = _store_with_image(root / "storage")
    _damage(damaged, "header")
    done = subprocess.run(
        [sys.executable, "-m", "crid", "serve", "--config", str(config_file)],
        capture_output=True,
        timeout=60,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert f"{damaged} is corrupt" in stderr
    assert "Traceback" not in stderr


@pytest.mark.root
def test_fault_torn_store_wal_drops_the_image_and_repairs_the_directories(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash while an image was being recorded: the copy of the store taken then has
    a WAL cut short. The store opens, says it replayed the log, lists no image (the
    image's transaction is gone), its directories agree with the database, and the
    image can be stored again."""
    live = Store.open(tmp_path / "live")
    try:
        live._db._conn.execute("PRAGMA wal_autocheckpoint=0")
        wal = tmp_path / "live" / "store.db-wal"
        before = wal.stat().st_size if wal.exists() else 0
        load_built(live, busybox_image(), ["crid-test/busybox:latest"])
        after = wal.stat().st_size
        assert after > before
        shutil.copytree(tmp_path / "live", tmp_path / "torn", symlinks=True)
    finally:
        live.close()
    with open(tmp_path / "torn" / "store.db-wal", "r+b") as handle:
        handle.truncate((before + after) // 2)
    with caplog.at_level(logging.WARNING, logger="ocistore"):
        torn = Store.open(tmp_path / "torn")
    try:
        assert "replaying the write-ahead log" in caplog.text
        assert torn.list_images() == []
        recorded = {
            str(r[0]).split(":", 1)[1] for r in torn._db.query("SELECT chain_id FROM layers")
        }
        on_disk = {p.name for p in (tmp_path / "torn" / "layers").iterdir()}
        assert on_disk == recorded
        load_built(torn, busybox_image(), ["crid-test/busybox:latest"])
        assert [list(image.names) for image in torn.list_images()] == [["crid-test/busybox:latest"]]
    finally:
        torn.close()
