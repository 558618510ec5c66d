"""The ``crid`` command as a user runs it: a real process, real signals, real socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import grpc
import msgspec
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config, load_config
from crid.defaults import DEFAULT_CNI_FILE

CRID = [sys.executable, "-m", "crid"]


def crid(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CRID, *args], capture_output=True, text=True, timeout=60, check=False)


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"crid exited early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError("crid did not create its socket")
        time.sleep(0.02)


@pytest.mark.binaries("runc", "conmon")
@pytest.mark.parametrize(
    "signals",
    [[signal.SIGTERM], [signal.SIGINT], [signal.SIGTERM, signal.SIGTERM, signal.SIGINT]],
    ids=["SIGTERM", "SIGINT", "repeated"],
)
def test_serve_answers_then_shuts_down_cleanly_on_signal(
    config_file: Path, signals: list[signal.Signals]
) -> None:
    config = load_config(config_file)
    socket_path = Path(config.crid.api.listen)
    proc = subprocess.Popen(
        [*CRID, "serve", "--config", str(config_file), "--init-defaults"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_socket(socket_path, proc)
        with grpc.insecure_channel(f"unix://{socket_path}") as ch:
            stub = api_pb2_grpc.RuntimeServiceStub(ch)
            assert stub.Version(api_pb2.VersionRequest(), timeout=10).runtime_name == "crid"
            conditions = {
                c.type: c.status
                for c in stub.Status(api_pb2.StatusRequest(), timeout=10).status.conditions
            }
        assert conditions == {"RuntimeReady": True, "NetworkReady": True}
        for signum in signals:  # a supervisor may repeat the signal while crid stops
            proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not socket_path.exists()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "crid stopped" in stderr
    written = Path(config.crid.network.network_dir) / DEFAULT_CNI_FILE
    assert json.loads(written.read_text())["plugins"][0]["type"] == "bridge"


def test_init_defaults_leaves_an_existing_network_alone(tmp_path: Path) -> None:
    from crid.defaults import write_default_cni_config

    net = tmp_path / "net.d"
    net.mkdir()
    (net / "05-mine.conf").write_text('{"name": "mine"}')
    assert write_default_cni_config(net) is None
    assert sorted(p.name for p in net.iterdir()) == ["05-mine.conf"]
    assert write_default_cni_config(tmp_path / "fresh") == tmp_path / "fresh" / DEFAULT_CNI_FILE


@pytest.mark.binaries("runc", "conmon")
def test_version_prints_crid_runtime_and_conmon(config_file: Path) -> None:
    done = crid("version", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "crid version 0.1.0"
    assert any(line.startswith("runtime (runc): runc version") for line in lines)
    assert any(line.startswith("conmon: conmon version") for line in lines)


def test_version_says_when_a_binary_is_missing(tmp_path: Path) -> None:
    config_file = tmp_path / "crid.toml"
    config_file.write_text('[crid.runtime]\nconmon = "/nonexistent/conmon"\n')
    done = crid("version", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    assert "conmon: not found" in done.stdout


def test_config_prints_effective_toml(config_file: Path) -> None:
    done = crid("config", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# crid configuration")
    printed = msgspec.convert(tomllib.loads(done.stdout), Config)
    assert printed == load_config(config_file)


def test_bad_config_exits_2_naming_key_and_file(tmp_path: Path) -> None:
    config_file = tmp_path / "crid.toml"
    config_file.write_text("[crid.api]\nlisten = 5\n")
    done = crid("serve", "--config", str(config_file))
    assert done.returncode == 2
    assert str(config_file) in done.stderr
    assert "crid.api.listen" in done.stderr


@pytest.mark.binaries("runc", "conmon")
def test_serve_refuses_a_socket_in_use(config_file: Path) -> None:
    config = load_config(config_file)
    socket_path = Path(config.crid.api.listen)
    first = subprocess.Popen(
        [*CRID, "serve", "--config", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_socket(socket_path, first)
        second = crid("serve", "--config", str(config_file))
        assert second.returncode == 1
        assert str(socket_path) in second.stderr
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)
    assert not socket_path.exists()


def test_entry_point_module_runs() -> None:
    done = subprocess.run(
        [*CRID, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0
    assert "serve" in done.stdout


def test_serve_runs_without_loading_the_cli_framework(tmp_path: Path) -> None:
    """typer, click and rich would stay resident for the daemon's whole life."""
    probe = (
        "import sys\n"
        f"sys.argv = ['crid', 'serve', '--config', '{tmp_path / 'missing.toml'}']\n"
        "from crid.entry import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, sorted({'typer', 'click', 'rich'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "2 []", done.stderr  # config error, and no typer/click/rich
    assert "missing.toml" in done.stderr


def test_serve_help_and_bad_arguments() -> None:
    assert "Run the daemon" in crid("serve", "--help").stdout
    bad = crid("serve", "--no-such-flag")
    assert bad.returncode == 2
    assert "--no-such-flag" in bad.stderr
