"""crid's systemd client against a real systemd (PID 1 of private namespaces).

Select these with ``pytest -k systemd``. The manager is real; the scopes, slices and
cgroup files it makes are checked where the kernel keeps them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.cgroups.systemd import escape_unit_path

from ._systemd_support import SYSTEMD, SystemdNamespace, systemd_namespace

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries(SYSTEMD, "dbus-daemon", "busctl", "systemd-run", "nsenter", "unshare"),
]

# Run inside the manager as a service: a scope for a sleeping process, in a kubelet-style
# pod slice, with resource properties; then a change through SetUnitProperties; then a stop.
_PROGRAM = """
import json, subprocess, sys
from pathlib import Path
from crid.cgroups.systemd import Systemd

def read(controller, group, name):
    return int(Path(f"/sys/fs/cgroup/{controller}{group}/{name}").read_text())

scope, slice_ = sys.argv[1], sys.argv[2]
seen = {}
sleeper = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    with Systemd() as systemd:
        systemd.start_scope(
            scope, [sleeper.pid], [("MemoryLimit", ("t", 64 << 20)), ("CPUShares", ("t", 512))],
            slice_=slice_,
        )
        seen["state"] = systemd.active_state(scope)
        group = systemd.property(scope, "org.freedesktop.systemd1.Scope", "ControlGroup")
        seen["control_group"] = group
        procs = Path(f"/sys/fs/cgroup/memory{group}/cgroup.procs").read_text().split()
        seen["in_scope"] = str(sleeper.pid) in procs
        seen["started"] = [read("memory", group, "memory.limit_in_bytes"),
                           read("cpu", group, "cpu.shares")]
        systemd.set_properties(scope, [("MemoryLimit", ("t", 32 << 20)), ("CPUShares", ("t", 256))])
        seen["updated"] = [read("memory", group, "memory.limit_in_bytes"),
                           read("cpu", group, "cpu.shares")]
        systemd.stop(scope)
        seen["exit"] = sleeper.wait(timeout=30)
        systemd.stop(scope)  # gone already: fine
finally:
    sleeper.kill()
print(json.dumps(seen))
"""


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[SystemdNamespace]:
    with systemd_namespace(tmp_path) as ns:
        yield ns


def test_systemd_namespace_starts_and_stops_cleanly(tmp_path: Path) -> None:
    with systemd_namespace(tmp_path) as ns:
        active = subprocess.run(
            [*ns.nsenter(), "systemctl", "is-active", "crid-test.target", "dbus.service"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert active.stdout.split() == ["active", "active"], ns.log.read_text()
        # systemd manages the cgroups below its own, never the host's root.
        assert (ns.cgroup_dir("systemd") / "init.scope").is_dir()
        assert not Path("/run/systemd/system").exists()
        pid = ns.pid
    assert not Path(f"/proc/{pid}").exists()
    assert not ns.cgroup_dir("systemd").exists()
    assert not ns.cgroup_dir("memory").exists()


def test_systemd_unit_paths_are_escaped() -> None:
    assert escape_unit_path("crid-ab.scope") == "/org/freedesktop/systemd1/unit/crid_2dab_2escope"


def test_systemd_transient_scope_with_resources(systemd: SystemdNamespace) -> None:
    token = secrets.token_hex(4)
    scope, slice_ = f"crid-{token}.scope", f"kubepods-besteffort-pod{token}.slice"
    done = systemd.run_service([sys.executable, "-c", _PROGRAM, scope, slice_])
    assert done.returncode == 0, done.stderr + systemd.log.read_text()[-2000:]
    seen = json.loads(done.stdout)
    place = f"/kubepods.slice/kubepods-besteffort.slice/{slice_}/{scope}"
    assert seen["state"] == "active"
    assert seen["control_group"] == place  # the slice's parents were made on the way
    assert seen["in_scope"]
    assert seen["started"] == [64 << 20, 512]  # StartTransientUnit's resource properties
    assert seen["updated"] == [32 << 20, 256]  # SetUnitProperties reached the cgroup files
    assert seen["exit"] == -15  # stopping the scope killed its process (SIGTERM)
    memory = systemd.cgroup_dir("memory") / place.lstrip("/")
    assert not memory.exists()  # the stopped scope's cgroup is gone


def _systemctl(ns: SystemdNamespace, *args: str) -> str:
    done = subprocess.run(
        [*ns.nsenter(), "systemctl", *args], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


@pytest.mark.binaries(SYSTEMD, "runc", "conmon", "/usr/bin/busybox")
def test_systemd_driver_runs_pods_in_slices_and_containers_in_scopes(
    systemd: SystemdNamespace, tmp_path: Path
) -> None:
    import grpc

    from crid._cri.v1 import api_pb2, api_pb2_grpc

    from ._node_support import host_network_pod, load_busybox, sleeper
    from .conftest import make_config

    config_file, config = make_config(
        tmp_path, '[crid.runtime]\ncgroup_manager = "systemd"\nconmon_cgroup = "pod"\n'
    )
    load_busybox(Path(config.crid.root) / "storage")
    socket_path = Path(config.crid.api.listen)
    stderr = tmp_path / "crid.stderr"
    # crid runs as a Type=notify service, as contrib/systemd/crid.service has it:
    # systemd-run returns once crid sent READY=1.
    started = subprocess.run(
        [*systemd.nsenter(), "systemd-run", "--quiet", "--unit=crid-under-test",
         "--property=Type=notify", "--property=Delegate=yes", "--property=KillMode=process",
         "--property=DefaultDependencies=no", f"--property=StandardError=append:{stderr}",
         f"--setenv=PATH={os.environ['PATH']}", "--",
         sys.executable, "-m", "crid", "serve", "--config", str(config_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr + (stderr.read_text() if stderr.exists() else "")
    assert _systemctl(systemd, "is-active", "crid-under-test.service") == "active"
    token = secrets.token_hex(4)
    pod_slice = f"kubepods-besteffort-pod{token}.slice"
    memory_root = systemd.cgroup_dir("memory")
    try:
        with grpc.insecure_channel(f"unix://{socket_path}") as channel:
            stub = api_pb2_grpc.RuntimeServiceStub(channel)
            driver = stub.RuntimeConfig(api_pb2.RuntimeConfigRequest(), timeout=10)
            assert driver.linux.cgroup_driver == api_pb2.SYSTEMD

            mismatched = host_network_pod("wrong", tmp_path / "logs")
            mismatched.linux.cgroup_parent = f"/kubepods/besteffort/pod{token}"
            with pytest.raises(grpc.RpcError) as info:
                stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=mismatched), timeout=60)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]

            pod = host_network_pod("sliced", tmp_path / "logs")
            pod.linux.cgroup_parent = pod_slice
            pod_id = stub.RunPodSandbox(
                api_pb2.RunPodSandboxRequest(config=pod), timeout=60
            ).pod_sandbox_id
            container = sleeper("scoped")
            container.linux.resources.memory_limit_in_bytes = 64 << 20
            container.linux.resources.cpu_shares = 512
            cid = stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=container, sandbox_config=pod
                ),
                timeout=60,
            ).container_id
            stub.StartContainer(api_pb2.StartContainerRequest(container_id=cid), timeout=60)

            pod_dir = memory_root / "kubepods.slice/kubepods-besteffort.slice" / pod_slice
            scope_dir = pod_dir / f"crid-{cid}.scope"
            assert _systemctl(systemd, "is-active", f"crid-{cid}.scope") == "active"
            assert int((scope_dir / "memory.limit_in_bytes").read_text()) == 64 << 20
            assert (scope_dir / "cgroup.procs").read_text().split()  # the container runs there
            conmon_dir = pod_dir / f"crid-conmon-{cid}.scope"
            assert _systemctl(systemd, "is-active", f"crid-conmon-{cid}.scope") == "active"
            assert len((conmon_dir / "cgroup.procs").read_text().split()) == 1

            resized = api_pb2.LinuxContainerResources(
                memory_limit_in_bytes=32 << 20, cpu_shares=256
            )
            stub.UpdateContainerResources(
                api_pb2.UpdateContainerResourcesRequest(container_id=cid, linux=resized),
                timeout=60,
            )
            assert int((scope_dir / "memory.limit_in_bytes").read_text()) == 32 << 20
            shown = _systemctl(systemd, "show", "-p", "MemoryLimit", "-p", "CPUShares",
                               f"crid-{cid}.scope")  # fmt: skip
            assert sorted(shown.splitlines()) == ["CPUShares=256", f"MemoryLimit={32 << 20}"]

            stats = stub.ContainerStats(
                api_pb2.ContainerStatsRequest(container_id=cid), timeout=30
            ).stats
            assert stats.memory.working_set_bytes.value > 0
            assert stats.cpu.usage_core_nano_seconds.value > 0

            hungry = api_pb2.ContainerConfig(
                metadata=api_pb2.ContainerMetadata(name="hungry"),
                image=container.image,
                command=["sh", "-c", "head -c 300000000 /dev/zero | tail"],
                log_path="hungry.log",
                linux=api_pb2.LinuxContainerConfig(
                    resources=api_pb2.LinuxContainerResources(memory_limit_in_bytes=32 << 20)
                ),
            )
            oom_id = stub.CreateContainer(
                api_pb2.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=hungry, sandbox_config=pod
                ),
                timeout=60,
            ).container_id
            stub.StartContainer(api_pb2.StartContainerRequest(container_id=oom_id), timeout=60)
            deadline = time.monotonic() + 60
            while True:
                status = stub.ContainerStatus(
                    api_pb2.ContainerStatusRequest(container_id=oom_id), timeout=30
                ).status
                if status.state == api_pb2.CONTAINER_EXITED:
                    break
                assert time.monotonic() < deadline, "the hungry container never exited"
                time.sleep(0.1)
            assert status.reason == "OOMKilled"

            stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
            stub.RemovePodSandbox(
                api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60
            )
            assert _systemctl(systemd, "is-active", f"crid-{cid}.scope") != "active"
            assert not scope_dir.exists()
    finally:
        subprocess.run(
            [*systemd.nsenter(), "systemctl", "stop", "crid-under-test.service"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    log = stderr.read_text()
    assert "crid stopped" in log, log
