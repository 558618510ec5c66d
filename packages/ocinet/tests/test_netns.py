"""Pinned namespaces (root): create, enter, run commands, remove."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ocinet import (
    NamespaceError,
    NamespaceKind,
    create_namespace,
    pin_pod_namespaces,
    remove_namespace,
    run_in_namespaces_sync,
)

pytestmark = pytest.mark.root


def _own(kind: str) -> str:
    return os.readlink(f"/proc/thread-self/ns/{kind}")


def test_pinned_net_namespace_is_distinct_and_enterable(tmp_path: Path) -> None:
    host = _own("net")
    ns = create_namespace(tmp_path / "netns" / "a", NamespaceKind.NET)
    try:
        assert ns.is_pinned()
        assert f"net:[{ns.inode()}]" != host
        assert ns.run_sync(_own, "net") == f"net:[{ns.inode()}]"
        assert _own("net") == host  # the caller never moved
        links = ns.exec_sync(["ip", "-o", "link", "show"], check=True).stdout.decode()
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
        with pytest.raises(NamespaceError, match="already pinned"):
            create_namespace(ns.path)
    finally:
        ns.remove()
    assert not ns.path.exists() and not ns.is_pinned()
    ns.remove()  # idempotent
    remove_namespace(tmp_path / "never-existed")


def test_pod_namespaces_with_hostname(tmp_path: Path) -> None:
    pod = pin_pod_namespaces(tmp_path / "run", "pod1", hostname="web-0")
    try:
        assert pod.net and pod.ipc and pod.uts
        assert pod.net.path == tmp_path / "run" / "netns" / "pod1"
        assert pod.ipc.path == tmp_path / "run" / "ipcns" / "pod1"
        assert pod.uts.exec_sync(["hostname"]).stdout.decode().strip() == "web-0"
        assert pod.uts.run_sync(socket.gethostname) == "web-0"
        assert socket.gethostname() != "web-0"
        assert pod.ipc.run_sync(_own, "ipc") == f"ipc:[{pod.ipc.inode()}]" != _own("ipc")
        both = run_in_namespaces_sync(pod.all(), lambda: (_own("net"), _own("uts")))
        assert both == (f"net:[{pod.net.inode()}]", f"uts:[{pod.uts.inode()}]")
    finally:
        pod.remove()
    assert all(not ns.path.exists() for ns in pod.all())
    pod.remove()


def test_invalid_requests(tmp_path: Path) -> None:
    with pytest.raises(NamespaceError):
        pin_pod_namespaces(tmp_path, "../x")
    with pytest.raises(NamespaceError, match="UTS"):
        pin_pod_namespaces(tmp_path, "p", kinds=["net"], hostname="h")
    ns = create_namespace(tmp_path / "n", "ipc")
    try:
        with pytest.raises(NamespaceError, match="not net"):
            ns.socket()
    finally:
        ns.remove()


def test_errors_propagate_and_commands_are_checked(tmp_path: Path) -> None:
    ns = create_namespace(tmp_path / "n")
    try:
        with pytest.raises(ZeroDivisionError):
            ns.run_sync(lambda: 1 / 0)
        assert _own("net") != f"net:[{ns.inode()}]"
        assert ns.exec_sync(["sh", "-c", "exit 3"]).returncode == 3
        with pytest.raises(NamespaceError, match="exited 3"):
            ns.exec_sync(["sh", "-c", "echo bad >&2; exit 3"], check=True)
        with pytest.raises(NamespaceError, match="timed out"):
            ns.exec_sync(["sleep", "5"], timeout=0.2)
        with pytest.raises(NamespaceError, match="cannot run"):
            ns.exec_sync(["/nonexistent/binary"])
        proc = ns.spawn(["readlink", "/proc/self/ns/net"], stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=10)
        assert out.decode().strip() == f"net:[{ns.inode()}]"
    finally:
        ns.remove()
    with pytest.raises(NamespaceError, match="cannot open"):
        ns.run_sync(time.time)


async def test_async_run_does_not_block_the_loop(tmp_path: Path) -> None:
    ns = create_namespace(tmp_path / "n")
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())

        def slow() -> str:
            time.sleep(0.3)
            return _own("net")

        assert await ns.run(slow) == f"net:[{ns.inode()}]"
        task.cancel()
        assert ticks >= 10
        out = await ns.exec(["ip", "-o", "link"], check=True)
        assert b"lo" in out.stdout
    finally:
        ns.remove()


async def test_sockets_and_connections_inside_the_namespace(tmp_path: Path) -> None:
    ns = create_namespace(tmp_path / "n")
    try:
        ns.exec_sync(["ip", "link", "set", "lo", "up"], check=True)
        server = ns.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(100).upper())

        thread = threading.Thread(target=serve)
        thread.start()
        # The host's loopback has no such listener; the namespace's has.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        reader, writer = await ns.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        await writer.drain()
        assert await reader.read(100) == b"PING"
        writer.close()
        await writer.wait_closed()
        await asyncio.to_thread(thread.join)
        server.close()
    finally:
        ns.remove()
