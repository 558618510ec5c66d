"""systemd's readiness protocol, against real datagram sockets and a real ``crid serve``."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.config import load_config
from crid.notify import notify

from ._node_support import start_serve, stop_serve


def _fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket as systemd holds one, and its NOTIFY_SOCKET value."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(30)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def test_notify_does_nothing_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_notify_sends_to_a_path_socket(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, address = listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert notify("READY=1", "STATUS=up") is True
    fields = _fields(sock.recv(4096))
    assert fields == {"READY": "1", "STATUS": "up", "MAINPID": str(os.getpid())}


def test_notify_sends_to_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"crid-test-notify-{secrets.token_hex(6)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(10)
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        assert notify("STOPPING=1") is True
        assert _fields(sock.recv(4096))["STOPPING"] == "1"


def test_notify_failure_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert notify("READY=1") is False


@pytest.mark.binaries("runc", "conmon")
def test_serve_notifies_ready_once_serving_and_stopping_on_sigterm(
    config_file: Path, listener: tuple[socket.socket, str]
) -> None:
    sock, address = listener
    config = load_config(config_file)
    socket_path = Path(config.crid.api.listen)
    proc = start_serve(config_file, socket_path, env={"NOTIFY_SOCKET": address})
    try:
        ready = _fields(sock.recv(4096))
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(proc.pid)
        assert str(socket_path) in ready["STATUS"]
        # READY=1 comes only after the socket serves (start_serve saw it answer, and
        # nothing else was sent before): the unit's start means the socket answers.
        assert socket_path.exists()
    finally:
        code = stop_serve(proc)
    assert code == 0
    assert _fields(sock.recv(4096))["STOPPING"] == "1"
