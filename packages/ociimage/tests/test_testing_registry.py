"""ociimage.testing.registry: the real docker-registry fixture."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from ociimage.testing import (
    DOCKER_REGISTRY,
    LocalRegistry,
    RegistryStartError,
    busybox_image,
    push_image,
)

needs_registry = pytest.mark.binaries(DOCKER_REGISTRY)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _refuses(host: str) -> bool:
    ip, port = host.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((ip, int(port))) != 0


def test_session_registry_answers_v2(registry: LocalRegistry) -> None:
    response = httpx.get(f"{registry.url}/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert registry.host.startswith("127.0.0.1:")
    assert registry.port != 5000
    assert registry.url == f"http://{registry.host}"


def test_session_registry_uses_its_own_config_and_storage(registry: LocalRegistry) -> None:
    config = json.loads(registry.config_path.read_text())
    assert config["http"]["addr"] == registry.host
    assert config["storage"]["filesystem"]["rootdirectory"] == str(registry.storage_dir)
    assert config["storage"]["delete"]["enabled"] is True
    assert "auth" not in config
    assert registry.storage_dir.is_relative_to(registry.workdir)
    assert "/etc/docker" not in registry.config_path.read_text()


@needs_registry
def test_two_registries_run_at_once_and_stop_really_ends_them() -> None:
    with LocalRegistry() as first, LocalRegistry() as second:
        assert first.port != second.port
        assert httpx.get(f"{first.url}/v2/").status_code == 200
        assert httpx.get(f"{second.url}/v2/").status_code == 200
        push_image(first, busybox_image(repository="only/in-first"))
        assert httpx.get(f"{first.url}/v2/_catalog").json()["repositories"] == ["only/in-first"]
        assert httpx.get(f"{second.url}/v2/_catalog").json()["repositories"] == []
        pid, host, workdir = first.pid, first.host, first.workdir
        assert pid is not None
        assert first.running
        first.stop()
        assert _gone(pid), "stop() must end and reap the process"
        assert (first.running, first.pid) == (False, None)
        assert _refuses(host)
        assert not workdir.exists(), "a temp workdir is removed on stop"
        assert httpx.get(f"{second.url}/v2/").status_code == 200
        first.stop()  # idempotent
    assert second.pid is None


@needs_registry
def test_workdir_given_is_kept(tmp_path: Path) -> None:
    with LocalRegistry(workdir=tmp_path / "reg") as reg:
        push_image(reg, busybox_image())
        assert reg.log_path.exists()
    assert (tmp_path / "reg" / "storage" / "docker").is_dir()
    assert (
        "PUT /v2/crid-test/busybox/manifests/latest"
        in (tmp_path / "reg" / "registry.log").read_text()
    )


@needs_registry
def test_htpasswd_basic_auth_is_enforced() -> None:
    with LocalRegistry(htpasswd=("alice", "s3cret")) as reg:
        anonymous = httpx.get(f"{reg.url}/v2/")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Basic ")
        assert httpx.get(f"{reg.url}/v2/", auth=("alice", "wrong")).status_code == 401
        assert httpx.get(f"{reg.url}/v2/", auth=("alice", "s3cret")).status_code == 200
        pushed = push_image(reg, busybox_image())  # uses the registry's credentials
        with reg.client() as client:
            assert client.get(f"/v2/{pushed.repository}/tags/list").json()["tags"] == ["latest"]
        with pytest.raises(Exception, match="401"):
            push_image(reg.host, busybox_image(tag="anonymous"))


@needs_registry
def test_startup_failure_reports_the_log_tail() -> None:
    two_drivers = LocalRegistry(extra_config={"storage": {"inmemory": {}}})
    bad_addr = LocalRegistry(extra_config={"http": {"addr": "127.0.0.1:not-a-port"}})
    for bad in (two_drivers, bad_addr):
        try:
            with pytest.raises(RegistryStartError, match="exited with status") as info:
                bad.start()
        finally:
            bad.stop()
        assert "log tail:\n" in str(info.value)
        assert str(info.value).split("log tail:\n", 1)[1].strip(), "the tail is not empty"
        assert bad.pid is None


def test_port_5000_is_refused() -> None:
    with pytest.raises(ValueError, match="5000"):
        LocalRegistry(port=5000)


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryStartError, match="not found"):
        LocalRegistry(binary=tmp_path / "nope").start()


_STUBBORN = """\
#!{python}
# Stand-in registry that answers /v2/ but ignores SIGTERM, to exercise the SIGKILL path.
import http.server, json, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
addr = json.load(open(sys.argv[2]))["http"]["addr"]
host, port = addr.rsplit(":", 1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
print("stubborn registry up", flush=True)
http.server.HTTPServer((host, int(port)), H).serve_forever()
"""


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    fake = tmp_path / "stubborn-registry"
    fake.write_text(textwrap.dedent(_STUBBORN.format(python=sys.executable)))
    fake.chmod(0o755)
    reg = LocalRegistry(binary=fake, stop_timeout=0.5)
    reg.start()
    pid = reg.pid
    assert pid is not None
    reg.stop()
    assert _gone(pid)


def test_a_process_that_never_answers_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "silent-registry"
    fake.write_text("#!/bin/sh\necho 'silent stand-in starting'\nexec sleep 60\n")
    fake.chmod(0o755)
    reg = LocalRegistry(binary=fake, startup_timeout=1.0)
    with pytest.raises(RegistryStartError, match="silent stand-in starting"):
        reg.start()
    assert reg.pid is None
