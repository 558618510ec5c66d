"""The state registry: name reservation, id prefixes, and surviving a restart (and a kill)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from crid.errors import AmbiguousIdError, NameReservedError, NotFoundError
from crid.state import (
    Container,
    ContainerMeta,
    ContainerState,
    PodMeta,
    Registry,
    Sandbox,
    SandboxState,
)
from crid.state.registry import CHECKPOINT_EVERY


def new_id() -> str:
    return secrets.token_hex(32)


def sandbox(name: str = "web", sid: str | None = None) -> Sandbox:
    return Sandbox(
        id=sid or new_id(),
        name=f"k8s_POD_{name}_default_uid_0",
        meta=PodMeta(name=name, uid="uid", namespace="default"),
        state=SandboxState.READY,
        created_at=time.time_ns(),
        labels={"app": name},
        namespaces={"network": "/run/netns/x"},
        ips=("10.0.0.2",),
        config=b"\x00\x01binary",
    )


def container(sandbox_id: str, name: str = "app") -> Container:
    return Container(
        id=new_id(),
        name=f"k8s_{name}_web_default_uid_0",
        sandbox_id=sandbox_id,
        meta=ContainerMeta(name=name),
        state=ContainerState.CREATED,
        created_at=time.time_ns(),
    )


async def test_records_survive_reopen(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    pod = sandbox()
    await registry.save_sandbox(pod)
    ctr = container(pod.id)
    await registry.save_container(ctr)
    running = dataclasses.replace(ctr, state=ContainerState.RUNNING, pid=42)
    await registry.save_container(running)
    registry.close()

    again = Registry.open(tmp_path / "state.db")
    assert again.sandbox(pod.id) == pod
    assert again.container(ctr.id) == running
    assert again.containers(pod.id) == [running]
    with pytest.raises(NameReservedError):  # names are reserved again after a restart
        await again.save_sandbox(sandbox(sid=new_id()))
    again.close()


async def test_names_are_reserved_until_removed(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    first = sandbox()
    await registry.save_sandbox(first)
    with pytest.raises(NameReservedError) as info:
        await registry.save_sandbox(sandbox())
    assert info.value.existing_id == first.id
    assert first.id in str(info.value)
    await registry.remove_sandbox(first.id)
    await registry.remove_sandbox(first.id)  # idempotent
    await registry.save_sandbox(sandbox())
    registry.close()


async def test_container_needs_its_sandbox(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    with pytest.raises(NotFoundError, match="pod sandbox"):
        await registry.save_container(container(new_id()))
    registry.close()


async def test_id_prefixes(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    a = sandbox("a", "abc1" + "0" * 60)
    b = sandbox("b", "abc2" + "0" * 60)
    await registry.save_sandbox(a)
    await registry.save_sandbox(b)
    assert registry.sandbox("abc1") == a
    assert registry.sandbox(b.id) == b
    with pytest.raises(AmbiguousIdError, match="matches 2"):
        registry.sandbox("abc")
    with pytest.raises(NotFoundError, match="not found"):
        registry.sandbox("ffff")
    with pytest.raises(NotFoundError, match="empty"):
        registry.sandbox("")
    assert registry.find_sandbox("ffff") is None
    registry.close()


WRITER = """
import asyncio, secrets, sys, time
from pathlib import Path
from crid.state import Registry, Sandbox, SandboxState, PodMeta

async def main():
    registry = Registry.open(Path(sys.argv[1]))
    for i in range(100000):
        s = Sandbox(id=secrets.token_hex(32), name=f"pod-{i}", created_at=time.time_ns(),
                    meta=PodMeta(name=f"pod-{i}", uid="u", namespace="n"),
                    state=SandboxState.READY)
        await registry.save_sandbox(s)
        print(s.id, flush=True)

asyncio.run(main())
"""


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acknowledged = [proc.stdout.readline().strip() for _ in range(50)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    registry = Registry.open(db)
    stored = {s.id for s in registry.sandboxes()}
    assert set(acknowledged) <= stored
    registry.close()


def stored_state(path: Path, container_id: str) -> str:
    """The state a second connection reads for ``container_id``."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT data FROM containers WHERE id = ?", (container_id,)).fetchone()
    return str(json.loads(row[0])["state"])


async def test_writes_stay_in_order_whichever_way_they_go(tmp_path: Path) -> None:
    """A write goes inline when the database is free, through the writer thread when
    another thread holds it (never waiting on the caller's thread), and a later write
    never overtakes one still queued."""
    registry = Registry.open(tmp_path / "state.db")
    db = registry._db
    pod = sandbox()
    await registry.save_sandbox(pod)
    record = container(pod.id)
    await registry.save_container(record)  # inline: nothing queued, nothing held
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with db.lock:
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    running = dataclasses.replace(record, state=ContainerState.RUNNING)
    queued = asyncio.create_task(registry.save_container(running))
    await asyncio.sleep(0.05)
    assert not queued.done()  # waits in the writer thread, not on the event loop
    exited = dataclasses.replace(record, state=ContainerState.EXITED)
    after = asyncio.create_task(registry.save_container(exited))
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.gather(queued, after)
    holder.join()
    assert stored_state(tmp_path / "state.db", record.id) == ContainerState.EXITED.value
    assert registry.container(record.id).state is ContainerState.EXITED
    registry.close()


async def test_a_write_never_waits_for_another_process_on_the_event_loop(
    tmp_path: Path,
) -> None:
    registry = Registry.open(tmp_path / "state.db")
    pod = sandbox()
    await registry.save_sandbox(pod)
    record = container(pod.id)
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    task = asyncio.create_task(registry.save_container(record))
    await asyncio.sleep(0.1)  # the event loop runs on: the write waits in the writer thread
    assert not task.done()
    other.execute("COMMIT")
    other.close()
    await task
    assert stored_state(tmp_path / "state.db", record.id) == ContainerState.CREATED.value
    registry.close()


async def test_checkpoints_run_in_the_writer_thread(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    pod = sandbox()
    await registry.save_sandbox(pod)
    checkpoints: list[str] = []
    original = registry._db.checkpoint

    def checkpoint() -> None:
        checkpoints.append(threading.current_thread().name)
        original()

    registry._db.checkpoint = checkpoint  # type: ignore[method-assign]
    for i in range(CHECKPOINT_EVERY):
        await registry.save_container(container(pod.id, name=f"app{i}"))
    registry.close()  # waits for the writer thread
    assert len(checkpoints) == 1 and checkpoints[0].startswith("crid-state")
