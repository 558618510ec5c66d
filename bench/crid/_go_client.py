"""Build and run ``bench/crid/cri_client_go``: CRI calls timed from a Go gRPC client.

The kubelet, crictl and critest are Go programs; Python's grpcio client adds ~0.6 ms to
every call on this machine, more than some of the RPCs cost crid. The Go client is
built offline from Debian's packages (``apt-get install golang-go golang-google-grpc-dev
golang-google-protobuf-dev``) in GOPATH mode: ``protoc-gen-go`` from their sources, the
CRI messages generated from crid's ``api.proto`` with grpcio-tools' protoc, nothing
fetched and nothing generated kept in the tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["build_go_client", "run_go_client"]

HERE = Path(__file__).resolve().parent
GOCODE = Path("/usr/share/gocode")
PROTO = HERE.parents[1] / "packages" / "crid" / "src" / "crid" / "_cri" / "v1" / "api.proto"
NEEDED = ("google.golang.org/grpc", "google.golang.org/protobuf/cmd/protoc-gen-go")


def build_go_client(workdir: Path) -> Path:
    """The built client's path; SystemExit naming what is missing when it cannot be."""
    go = shutil.which("go")
    missing = [p for p in NEEDED if not (GOCODE / "src" / p).is_dir()]
    if go is None or missing:
        raise SystemExit(
            "--go needs Go and Debian's Go sources of grpc and protobuf: apt-get install"
            " golang-go golang-google-grpc-dev golang-google-protobuf-dev"
        )
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{workdir}:{GOCODE}",
        "GOCACHE": str(workdir / "cache"),
    }
    bin_dir = workdir / "bin"
    src = workdir / "src"
    (src / "crilat").mkdir(parents=True)
    shutil.copy(HERE / "cri_client_go" / "main.go", src / "crilat" / "main.go")
    plugin = bin_dir / "protoc-gen-go"
    subprocess.run(
        [go, "build", "-o", str(plugin), "google.golang.org/protobuf/cmd/protoc-gen-go"],
        env=env, check=True, cwd=workdir,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"--plugin=protoc-gen-go={plugin}",
         f"-I{PROTO.parent}", f"--go_out={src}", "--go_opt=paths=import", str(PROTO)],
        check=True,
    )  # fmt: skip
    client = bin_dir / "crilat"
    subprocess.run([go, "build", "-o", str(client), "crilat"], env=env, check=True, cwd=workdir)
    return client


def run_go_client(
    client: Path, sock: Path, calls: int, pod: str, container: str
) -> dict[str, list[float]]:
    """Each RPC's per-call milliseconds, in the client's order."""
    done = subprocess.run(
        [str(client), "-socket", str(sock), "-calls", str(calls), "-pod", pod,
         "-container", container],
        capture_output=True, text=True, check=True, timeout=3600,
    )  # fmt: skip
    found = json.loads(done.stdout)
    return {name: found["samples"][name] for name in found["order"]}
