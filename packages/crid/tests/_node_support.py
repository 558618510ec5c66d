"""Shared helpers of the node operation tests: a real ``crid serve`` and host-network pods."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from ociimage.testing import busybox_image
from ocistore import Store
from ocistore.testing import load_built

CRID = [sys.executable, "-m", "crid"]
IMAGE = "crid-test/busybox:latest"


def crid(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CRID, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def start_serve(
    config_file: Path, socket_path: Path, *, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``crid serve`` in the background, once it answers ``Version``; stderr to a file."""
    stderr = (config_file.parent / "crid.stderr").open("ab")
    proc = subprocess.Popen(
        [*CRID, "serve", "--config", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, **(env or {})},
    )
    stderr.close()
    deadline = time.monotonic() + 30
    while True:
        if socket_path.exists():
            try:
                with grpc.insecure_channel(f"unix://{socket_path}") as channel:
                    api_pb2_grpc.RuntimeServiceStub(channel).Version(
                        api_pb2.VersionRequest(), timeout=2
                    )
                return proc
            except grpc.RpcError:
                pass
        assert proc.poll() is None, (config_file.parent / "crid.stderr").read_text()
        assert time.monotonic() < deadline, "crid did not come up"
        time.sleep(0.05)


def stop_serve(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(timeout=30)


def load_busybox(storage: Path) -> None:
    with Store.open(storage) as store:
        load_built(store, busybox_image(), [IMAGE])


def host_network_pod(name: str, log_dir: Path) -> api_pb2.PodSandboxConfig:
    """A pod in the host's network namespace: no CNI needed."""
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="ns"),
        log_directory=str(log_dir),
        linux=api_pb2.LinuxPodSandboxConfig(
            security_context=api_pb2.LinuxSandboxSecurityContext(
                namespace_options=api_pb2.NamespaceOption(network=api_pb2.NamespaceMode.NODE)
            )
        ),
    )


def sleeper(name: str) -> api_pb2.ContainerConfig:
    return api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=name),
        image=api_pb2.ImageSpec(image=IMAGE),
        command=["sleep", "3600"],
        log_path=f"{name}.log",
    )


def run_pod_with_sleeper(socket_path: Path, log_dir: Path, name: str) -> tuple[str, str]:
    """A started host-network pod with one running ``sleep``: (pod id, container id)."""
    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        stub = api_pb2_grpc.RuntimeServiceStub(channel)
        pod = host_network_pod(name, log_dir)
        pod_id = stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod), timeout=60)
        created = stub.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id.pod_sandbox_id, config=sleeper(name), sandbox_config=pod
            ),
            timeout=60,
        )
        stub.StartContainer(
            api_pb2.StartContainerRequest(container_id=created.container_id), timeout=60
        )
    return pod_id.pod_sandbox_id, created.container_id
