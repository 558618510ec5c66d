"""crid killed with SIGKILL and started again: nothing is lost, leftovers are cleaned.

A real ``crid serve`` process runs a pod with a long-running container and one that
exits while crid is down; after the restart both are listed with the right state (the
exit code read from conmon's exit file), the log continues, and Stop/Remove work. A
record left in UNKNOWN (crid died inside CreateContainer) and a bundle no record owns
are removed at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.state import (
    Container,
    ContainerMeta,
    ContainerState,
    PodMeta,
    Registry,
    Sandbox,
    SandboxState,
)
from ociimage.testing import busybox_image
from ocinet import NamespaceKind, pin_pod_namespaces
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)
from ocistore import Store
from ocistore.testing import load_built

from .conftest import make_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries("runc", "conmon", "/usr/bin/busybox", "/usr/lib/cni/bridge"),
]

IMAGE = "crid-test/busybox:latest"


async def start_crid(config_file: Path, socket_path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crid", "serve", "--config", str(config_file)],
        stdout=subprocess.DEVNULL,
        stderr=(config_file.parent / "crid.stderr").open("ab"),
    )
    deadline = time.monotonic() + 20
    while True:
        if socket_path.exists():
            try:
                async with grpc.aio.insecure_channel(f"unix://{socket_path}") as channel:
                    stub = api_pb2_grpc.RuntimeServiceStub(channel)
                    await stub.Version(api_pb2.VersionRequest(), timeout=2)
                    return proc
            except grpc.aio.AioRpcError:
                pass
        assert proc.poll() is None, (config_file.parent / "crid.stderr").read_text()
        assert time.monotonic() < deadline, "crid did not come up"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def stub_for(socket_path: Path) -> AsyncIterator[api_pb2_grpc.RuntimeServiceStub]:
    async with grpc.aio.insecure_channel(f"unix://{socket_path}") as channel:
        yield api_pb2_grpc.RuntimeServiceStub(channel)


async def test_kill_9_and_restart(tmp_path: Path) -> None:
    name, bridge = f"crid-test-{secrets.token_hex(3)}", random_bridge_name()
    conf = bridge_network(
        name=name, bridge=bridge, subnet=random_test_subnet(), data_dir=tmp_path / "ipam"
    )
    (tmp_path / "net.d").mkdir()
    (tmp_path / "net.d" / "10-test.conflist").write_text(json.dumps(conf))
    config_file, config = make_config(
        tmp_path,
        f'[crid.runtime]\nnamespaces_dir = "{tmp_path}/run/ns"\n'
        f'container_exits_dir = "{tmp_path}/run/exits"\n',
    )
    storage = Path(config.crid.root) / "storage"
    store = Store.open(storage)
    try:
        load_built(store, busybox_image(), [IMAGE])
    finally:
        store.close()
    socket_path = Path(config.crid.api.listen)
    parent = f"crid-test-{secrets.token_hex(4)}"
    proc = await start_crid(config_file, socket_path)
    try:
        pod = api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name="p", uid="u1", namespace="ns"),
            log_directory=str(tmp_path / "logs"),
            linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{parent}/p"),
        )

        def container(cname: str, script: str) -> api_pb2.ContainerConfig:
            return api_pb2.ContainerConfig(
                metadata=api_pb2.ContainerMetadata(name=cname),
                image=api_pb2.ImageSpec(image=IMAGE),
                command=["sh", "-c", script],
                log_path=f"{cname}.log",
            )

        async with stub_for(socket_path) as stub:
            pod_id = (
                await stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=pod))
            ).pod_sandbox_id
            ids = {}
            for cname, script in (
                ("long", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"),
                ("short", "sleep 1; exit 7"),
            ):
                created = await stub.CreateContainer(
                    api_pb2.CreateContainerRequest(
                        pod_sandbox_id=pod_id, config=container(cname, script)
                    )
                )
                await stub.StartContainer(
                    api_pb2.StartContainerRequest(container_id=created.container_id)
                )
                ids[cname] = created.container_id
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        await asyncio.sleep(1.5)  # "short" exits while crid is down

        # What a crash inside CreateContainer leaves: a record still UNKNOWN, and a
        # bundle directory nobody owns.
        registry = Registry.open(Path(config.crid.root) / "state.db")
        half = Container(
            id=secrets.token_hex(32),
            name="k8s_half_p_ns_u1_0",
            sandbox_id=pod_id,
            meta=ContainerMeta(name="half"),
            state=ContainerState.UNKNOWN,
            created_at=time.time_ns(),
        )
        await registry.save_container(half)
        # ... and a RunPodSandbox cut short: a NOTREADY record and a pinned netns.
        cut_short = Sandbox(
            id=secrets.token_hex(32),
            name="k8s_POD_cut_ns_u2_0",
            meta=PodMeta(name="cut", uid="u2", namespace="ns"),
            state=SandboxState.NOTREADY,
            created_at=time.time_ns(),
            config=api_pb2.PodSandboxConfig(
                metadata=api_pb2.PodSandboxMetadata(name="cut", uid="u2", namespace="ns")
            ).SerializeToString(),
        )
        await registry.save_sandbox(cut_short)
        registry.close()
        ns_dir = Path(config.crid.runtime.namespaces_dir)
        cut_pin = pin_pod_namespaces(ns_dir, cut_short.id, [NamespaceKind.NET]).net
        assert cut_pin is not None and cut_pin.is_pinned()
        orphan = Path(config.crid.runroot) / "containers" / secrets.token_hex(32)
        orphan.mkdir(parents=True)
        # conmon's attach links of the half-created container, of the orphaned bundle, and
        # one whose bundle is gone already.
        attach = Path(config.crid.runroot) / "attach"
        stray_links = [attach / half.id, attach / orphan.name, attach / secrets.token_hex(32)]
        for link in stray_links:
            link.symlink_to(orphan.parent / link.name)

        proc = await start_crid(config_file, socket_path)
        async with stub_for(socket_path) as stub:
            pods = (await stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())).items
            assert {(p.id, p.state) for p in pods} == {
                (pod_id, api_pb2.SANDBOX_READY),
                (cut_short.id, api_pb2.SANDBOX_NOTREADY),
            }
            await stub.RemovePodSandbox(
                api_pb2.RemovePodSandboxRequest(pod_sandbox_id=cut_short.id)
            )
            assert not cut_pin.path.exists()
            listed = {
                c.id: c.state
                for c in (await stub.ListContainers(api_pb2.ListContainersRequest())).containers
            }
            assert listed == {
                ids["long"]: api_pb2.CONTAINER_RUNNING,
                ids["short"]: api_pb2.CONTAINER_EXITED,
            }
            short = (
                await stub.ContainerStatus(
                    api_pb2.ContainerStatusRequest(container_id=ids["short"])
                )
            ).status
            assert (short.exit_code, short.reason) == (7, "Error")
            assert not orphan.exists()
            assert [link for link in stray_links if link.is_symlink()] == []
            assert sorted(p.name for p in attach.iterdir()) == sorted(ids.values())
            log = tmp_path / "logs" / "long.log"
            before = log.read_text().count("tick")
            await asyncio.sleep(0.6)
            assert log.read_text().count("tick") > before  # conmon kept logging
            exec_reply = await stub.ExecSync(
                api_pb2.ExecSyncRequest(container_id=ids["long"], cmd=["echo", "alive"], timeout=5)
            )
            assert exec_reply.stdout == b"alive\n"
            await stub.StopContainer(
                api_pb2.StopContainerRequest(container_id=ids["long"], timeout=0)
            )
            long = (
                await stub.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=ids["long"]))
            ).status
            assert long.state == api_pb2.CONTAINER_EXITED and long.exit_code == 137
            await stub.StopPodSandbox(api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            await stub.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
            assert not (await stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())).items
            assert not list((Path(config.crid.runroot) / "containers").iterdir())
            assert not list(attach.iterdir())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        runc_root = Path(config.crid.runroot) / "runtimes" / "runc"
        for state in runc_root.iterdir() if runc_root.is_dir() else ():
            subprocess.run(
                ["runc", "--root", str(runc_root), "delete", "-f", state.name], check=False
            )
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            target = line.split()[4]
            if target.startswith(str(tmp_path)):
                subprocess.run(["umount", "-l", target], check=False)
        delete_link(bridge)
        remove_iptables_rules_mentioning(name)
        Hierarchies.detect().remove(parent)
