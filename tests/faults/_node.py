"""One test node for fault tests: a real ``crid serve`` process, its CNI network, its
cgroup parent, a fault-points file, and the kubelet's side of the CRI.

The node is shared by the cases of a module (one registry, one pulled image, one network)
and crid is restarted only where a fault kills or stops it. Faults are chosen by writing
the file ``CRID_FAULT_POINTS`` names (see ``crid.faults``): crid reads it at each point.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.faults import ENV
from ociimage.testing import LocalRegistry
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)

from ._leaks import Scope

#: A warm spare: Python with crid's daemon modules imported, waiting for "go" on stdin to
#: run ``crid serve`` (the real entry point). Imports are most of crid's start-up time on a
#: busy machine, so restarts after a fault do not wait for them.
_SPARE = (
    "import sys, crid.entry, crid.server, crid.config, crid.logs\n"
    "if sys.stdin.readline() != 'go\\n':\n"
    "    sys.exit(0)\n"
    "sys.argv = ['crid', 'serve', '--config', sys.argv[1]]\n"
    "crid.entry.main()\n"
)

#: A container that exits cleanly on SIGTERM (busybox sleep as PID 1 would ignore it).
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Node:
    """crid, restartable, with everything a test needs to drive and check it."""

    def __init__(self, tmp: Path, registry: LocalRegistry, *, grace: str = "2s") -> None:
        self.tmp = tmp
        self.socket = tmp / "run" / "crid.sock"
        self.network = f"crid-fault-{secrets.token_hex(3)}"
        self.bridge = random_bridge_name()
        self.cgroup_parent = f"crid-fault-{secrets.token_hex(4)}"
        self.faults = tmp / "faults"
        self.faults.write_text("")
        self.scope = Scope(
            root=tmp / "root",
            runroot=tmp / "run",
            network=self.network,
            bridge=self.bridge,
            ipam_dir=tmp / "ipam",
            cgroup_parent=self.cgroup_parent,
        )
        net_d = tmp / "net.d"
        net_d.mkdir(exist_ok=True)
        conf = bridge_network(
            name=self.network,
            bridge=self.bridge,
            subnet=random_test_subnet(),
            data_dir=tmp / "ipam",
            loopback=True,
        )
        (net_d / "10-fault.conflist").write_text(json.dumps(conf))
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
            f'[crid.api]\nlisten = "{self.socket}"\nshutdown_grace = "{grace}"\n'
            f'[crid.image]\nregistries_conf = "{registries}"\n'
            f'registries_conf_dir = "{tmp}/registries.d"\nsignature_policy = "{policy}"\n'
            f'[crid.network]\nnetwork_dir = "{net_d}"\ncni_default_network = "{self.network}"\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._spare: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self.runtime: api_pb2_grpc.RuntimeServiceStub
        self.images: api_pb2_grpc.ImageServiceStub
        self.pods_made = 0

    # -- the process --------------------------------------------------------------------

    def _spawn(self) -> subprocess.Popen[bytes]:
        with (self.tmp / "crid.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-c", _SPARE, str(self.config)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=dict(os.environ, **{ENV: str(self.faults)}),
            )

    def start(self) -> None:
        """Start crid and wait until it answers (a killed crid leaves a stale socket)."""
        self.proc = self._spare or self._spawn()
        self._spare = None
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        self._channel = grpc.insecure_channel(f"unix://{self.socket}")
        self.runtime = api_pb2_grpc.RuntimeServiceStub(self._channel)
        self.images = api_pb2_grpc.ImageServiceStub(self._channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.runtime.Version(api_pb2.VersionRequest(), timeout=1)
                self._spare = self._spawn()  # for the next restart
                return
            except grpc.RpcError:
                assert self.proc.poll() is None, self.log_tail()
                assert time.monotonic() < deadline, "crid did not start"
                time.sleep(0.02)

    def log_tail(self) -> str:
        return (self.tmp / "crid.log").read_text(errors="replace")[-4000:]

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        return code

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.wait_exit(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.wait_exit()

    # -- faults ------------------------------------------------------------------------

    def set_fault(self, point: str = "", action: str = "kill") -> None:
        """Arm one fault point (none: ``point`` empty); forget the points reached."""
        self.faults.write_text(f"{point} {action}\n" if point else "")
        Path(f"{self.faults}.reached").unlink(missing_ok=True)

    def reached(self) -> list[str]:
        path = Path(f"{self.faults}.reached")
        return path.read_text().split() if path.exists() else []

    def wait_reached(self, point: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while point not in self.reached():
            assert time.monotonic() < deadline, f"crid never reached {point}"
            time.sleep(0.005)

    # -- the kubelet's side ------------------------------------------------------------

    def pod_config(self, name: str, attempt: int = 0) -> api_pb2.PodSandboxConfig:
        """A pod with a host port (portmap rules) and a shared PID namespace (holder)."""
        uid = f"uid-{name}"
        return api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(
                name=name, uid=uid, namespace="faults", attempt=attempt
            ),
            hostname=name,
            log_directory=str(self.tmp / "logs" / uid),
            port_mappings=[
                api_pb2.PortMapping(
                    protocol=api_pb2.TCP,
                    container_port=8080,
                    host_port=_free_port(),
                    host_ip="127.0.0.1",
                )
            ],
            linux=api_pb2.LinuxPodSandboxConfig(
                cgroup_parent=f"/{self.cgroup_parent}/pod-{uid}",
                security_context=api_pb2.LinuxSandboxSecurityContext(
                    namespace_options=api_pb2.NamespaceOption(pid=api_pb2.POD)
                ),
            ),
        )

    def container_config(
        self, image: str, name: str = "app", attempt: int = 0
    ) -> api_pb2.ContainerConfig:
        return api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name, attempt=attempt),
            image=api_pb2.ImageSpec(image=image),
            command=COMMAND,
            log_path=f"{name}/{attempt}.log",
            linux=api_pb2.LinuxContainerConfig(
                security_context=api_pb2.LinuxContainerSecurityContext(
                    namespace_options=api_pb2.NamespaceOption(pid=api_pb2.POD)
                )
            ),
        )

    def clean_up(self) -> None:
        """What the kubelet does with pods it no longer wants: list, stop, remove."""
        for container in self.runtime.ListContainers(api_pb2.ListContainersRequest()).containers:
            self.runtime.StopContainer(
                api_pb2.StopContainerRequest(container_id=container.id, timeout=5)
            )
            self.runtime.RemoveContainer(api_pb2.RemoveContainerRequest(container_id=container.id))
        for pod in self.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items:
            self.runtime.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod.id))
            self.runtime.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod.id))

    # -- teardown ----------------------------------------------------------------------

    def destroy(self) -> None:
        """After the tests (or a failure): remove everything, whatever state it is in."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.set_fault()
                self.start()
            self.clean_up()
        finally:
            self.stop()
            if self._spare is not None:
                assert self._spare.stdin is not None
                self._spare.stdin.close()  # no "go": it exits
                self._spare.wait(60)
                self._spare = None
            runc_root = self.scope.runroot / "runtimes" / "runc"
            for state in runc_root.iterdir() if runc_root.is_dir() else ():
                subprocess.run(
                    ["runc", "--root", str(runc_root), "delete", "-f", state.name],
                    check=False,
                    capture_output=True,
                )
            for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
                target = line.split()[4]
                if target.startswith(f"{self.tmp}/"):
                    subprocess.run(["umount", "-l", target], check=False)
            delete_link(self.bridge)
            remove_iptables_rules_mentioning(self.network)
            Hierarchies.detect().remove(self.cgroup_parent)
