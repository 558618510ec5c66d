"""The README's set-up works from a clean clone: `make run` serves with working defaults.

The clone is of the current commit, so what is tested is what a new user gets.
``make run`` is pointed at a configuration under tmp_path (tests never touch
/run/crid or /etc/cni); everything else is the README's command as written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.binaries("git", "make", "runc", "conmon")
def test_make_run_from_a_clean_clone_serves(repo_root: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(repo_root), str(clone)],
        check=True,
        timeout=120,
    )
    socket_path = tmp_path / "run" / "crid.sock"
    config = tmp_path / "crid.toml"
    config.write_text(
        f'[crid]\nroot = "{tmp_path}/root"\nrunroot = "{tmp_path}/run"\n'
        f'[crid.api]\nlisten = "{socket_path}"\n'
        f'[crid.network]\nnetwork_dir = "{tmp_path}/net.d"\n'
        f'[crid.nri]\nsocket_path = "{tmp_path}/nri/nri.sock"\n'
        f'plugin_dir = "{tmp_path}/nri/plugins"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS")}
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "run", f"CONFIG={config}"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not socket_path.exists():
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()
            assert time.monotonic() < deadline, "make run did not start the daemon"
            time.sleep(0.1)
        with grpc.insecure_channel(f"unix://{socket_path}") as channel:
            stub = api_pb2_grpc.RuntimeServiceStub(channel)
            assert stub.Version(api_pb2.VersionRequest(), timeout=10).runtime_name == "crid"
            reply = stub.Status(api_pb2.StatusRequest(), timeout=10)
        ready = {c.type: c.status for c in reply.status.conditions}
        assert ready == {"RuntimeReady": True, "NetworkReady": True}
        assert (tmp_path / "net.d" / "10-crid-bridge.conflist").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    # make exits at once on SIGTERM; the daemon (same process group) finishes on its own.
    deadline = time.monotonic() + 20
    while socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not socket_path.exists(), (
        "the daemon did not remove its socket on SIGTERM:\n"
        + (tmp_path / "make-run.log").read_text()
    )
    assert (clone / ".venv").is_dir()
