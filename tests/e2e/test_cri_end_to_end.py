"""crid as the kubelet sees it: a real `crid serve` process, driven only through the CRI.

One pod's whole life: the image pulled from the loopback registry through PullImage, a pod
on a CNI bridge network, a container created, started, exec'd into, logged and measured,
crid killed with SIGKILL and restarted in the middle, then everything stopped and removed.
All state lives in tmp_path; the test network never masquerades.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from ociimage.testing import LocalRegistry, PushedImage, TestImages
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.binaries("runc", "conmon", "iptables", "/usr/lib/cni/bridge"),
]

# A container that exits cleanly on SIGTERM (busybox sleep as PID 1 would ignore it).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; echo hello from crid; while true; do sleep 0.1; done"]


class Crid:
    """A `crid serve` child process with its own config, restartable."""

    def __init__(self, tmp: Path, registry: LocalRegistry, network_name: str) -> None:
        self.tmp = tmp
        self.socket = tmp / "run" / "crid.sock"
        (tmp / "containers").mkdir(exist_ok=True)
        registries = tmp / "registries.conf"
        registries.write_text(
            f'unqualified-search-registries = []\n[[registry]]\nlocation = "{registry.host}"\n'
            "insecure = true\n"
        )
        policy = tmp / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.config = tmp / "crid.toml"
        self.config.write_text(
            f'[crid]\nroot = "{tmp}/root"\nrunroot = "{tmp}/run"\nlog_level = "debug"\n'
            f'[crid.api]\nlisten = "{self.socket}"\n'
            f'[crid.image]\nregistries_conf = "{registries}"\n'
            f'registries_conf_dir = "{tmp}/registries.d"\nsignature_policy = "{policy}"\n'
            f'[crid.network]\nnetwork_dir = "{tmp}/net.d"\n'
            f'cni_default_network = "{network_name}"\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.tmp / "crid.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crid", "serve", "--config", str(self.config)],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while not self._answers():  # a killed crid leaves a stale socket file behind
            assert self.proc.poll() is None, (self.tmp / "crid.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "crid did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def kill(self, signum: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)
        self.proc.wait(timeout=60)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"unix://{self.socket}")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[str]:
    name = f"crid-e2e-{secrets.token_hex(3)}"
    bridge = random_bridge_name()
    conf = bridge_network(
        name=name,
        bridge=bridge,
        subnet=random_test_subnet(),
        data_dir=tmp_path / "ipam",
        loopback=True,
    )
    (tmp_path / "net.d").mkdir()
    (tmp_path / "net.d" / "10-e2e.conflist").write_text(json.dumps(conf))
    yield name
    delete_link(bridge)
    remove_iptables_rules_mentioning(name)


def test_a_pod_through_the_cri_with_a_crash_in_the_middle(
    tmp_path: Path, registry: LocalRegistry, test_images: TestImages, network: str
) -> None:
    cgroup_parent = f"crid-e2e-{secrets.token_hex(4)}"
    crid = Crid(tmp_path, registry, network)
    crid.start()
    try:
        run(crid, tmp_path, test_images.busybox, cgroup_parent)
    finally:
        remove_everything(crid)
        Hierarchies.detect().remove(cgroup_parent)


def remove_everything(crid: Crid) -> None:
    """After a failure: remove every pod through a (re)started crid, then stop it."""
    if crid.proc is None or crid.proc.poll() is not None:
        crid.start()
    with crid.channel() as channel:
        runtime = api_pb2_grpc.RuntimeServiceStub(channel)
        for pod in runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items:
            runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod.id))
            runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod.id))
    crid.kill(signal.SIGTERM)


def run(crid: Crid, tmp: Path, pushed: PushedImage, cgroup_parent: str) -> None:
    image = pushed.reference
    with crid.channel() as channel:
        runtime = api_pb2_grpc.RuntimeServiceStub(channel)
        images = api_pb2_grpc.ImageServiceStub(channel)
        ready = {
            c.type: c.status for c in runtime.Status(api_pb2.StatusRequest()).status.conditions
        }
        assert ready == {"RuntimeReady": True, "NetworkReady": True}

        image_ref = images.PullImage(
            api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=image))
        ).image_ref
        assert image_ref.startswith("sha256:")

        logs = tmp / "pod-logs"
        pod_config = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name="web", uid="uid-1", namespace="e2e"),
            hostname="web-e2e",
            log_directory=str(logs),
            linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{cgroup_parent}/pod-uid-1"),
        )
        pod_id = runtime.RunPodSandbox(
            api_pb2.RunPodSandboxRequest(config=pod_config)
        ).pod_sandbox_id
        pod = runtime.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
        assert pod.status.state == api_pb2.SANDBOX_READY
        assert pod.status.network.ip

        with pytest.raises(grpc.RpcError) as again:  # the pod's name is reserved
            runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod_config))
        assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert pod_id in (again.value.details() or "")

        container_config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="app"),
            image=api_pb2.ImageSpec(image=image),
            command=COMMAND,
            log_path="app/0.log",
        )
        container_id = runtime.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=container_config, sandbox_config=pod_config
            )
        ).container_id
        runtime.StartContainer(api_pb2.StartContainerRequest(container_id=container_id))

        status = container_status(runtime, container_id)
        assert status.state == api_pb2.CONTAINER_RUNNING
        assert status.image_ref in (image_ref, pushed.digest_reference)
        log = logs / "app" / "0.log"
        wait_for(lambda: log.exists() and "hello from crid" in log.read_text())
        assert " stdout F hello from crid" in log.read_text()

        exec_reply = runtime.ExecSync(
            api_pb2.ExecSyncRequest(container_id=container_id, cmd=["hostname"], timeout=10)
        )
        assert (exec_reply.exit_code, exec_reply.stdout.strip()) == (0, b"web-e2e")

        stats = runtime.ListContainerStats(api_pb2.ListContainerStatsRequest()).stats
        assert [s.attributes.id for s in stats] == [container_id]
        assert stats[0].memory.working_set_bytes.value > 0

    crid.kill(signal.SIGKILL)  # a crash: conmon keeps the container running
    crid.start()

    with crid.channel() as channel:
        runtime = api_pb2_grpc.RuntimeServiceStub(channel)
        images = api_pb2_grpc.ImageServiceStub(channel)
        pods = runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items
        assert [(p.id, p.state) for p in pods] == [(pod_id, api_pb2.SANDBOX_READY)]
        assert container_status(runtime, container_id[:12]).state == api_pb2.CONTAINER_RUNNING

        runtime.StopContainer(api_pb2.StopContainerRequest(container_id=container_id, timeout=10))
        stopped = container_status(runtime, container_id)
        assert stopped.state == api_pb2.CONTAINER_EXITED
        assert (stopped.exit_code, stopped.reason) == (0, "Completed")

        runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))  # idempotent
        runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert not runtime.ListContainers(api_pb2.ListContainersRequest()).containers
        with pytest.raises(grpc.RpcError) as gone:
            runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=container_id))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND

        images.RemoveImage(api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=image_ref)))
        status_reply = images.ImageStatus(
            api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=image))
        )
        assert not status_reply.HasField("image")

    assert not any((tmp / "run" / "ns" / "netns").iterdir())


def container_status(
    runtime: api_pb2_grpc.RuntimeServiceStub, container_id: str
) -> api_pb2.ContainerStatus:
    return runtime.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=container_id)).status


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)
