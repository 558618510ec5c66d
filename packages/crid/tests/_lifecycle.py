"""Helpers of the end-to-end CRI tests: a real Daemon on a socket in tmp_path, runc
under conmon, a CNI bridge network (bridge + host-local + loopback + portmap, no
masquerading, a random 10.x subnet), a busybox image in the store, and the calls tests
make through the CRI. Each environment removes what it made, even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.cgroups import Hierarchies
from crid.sandbox.lifecycle import Lifecycle
from crid.server import Daemon
from ociimage.testing import busybox_image
from ocinet.testing import (
    bridge_network,
    delete_link,
    random_bridge_name,
    random_test_subnet,
    remove_iptables_rules_mentioning,
)
from ocistore.testing import load_built

from .conftest import make_config

IMAGE = "crid-test/busybox:latest"
BUILT = busybox_image()


@dataclass
class Env:
    """One crid with its network, image, cgroup parent and a client."""

    tmp: Path
    daemon: Daemon
    stub: api_pb2_grpc.RuntimeServiceStub
    cgroup_parent: str
    subnet: str
    network: str

    @property
    def lifecycle(self) -> Lifecycle:
        assert self.daemon.context is not None
        return Lifecycle.of(self.daemon.context)


def runtime_table(tmp: Path, lines: str = "") -> str:
    """Pinned namespaces and exit files under tmp too (their defaults are in /run/crid)."""
    return (
        f'[crid.runtime]\nnamespaces_dir = "{tmp}/run/ns"\n'
        f'container_exits_dir = "{tmp}/run/exits"\n{lines}'
    )


def write_network(
    tmp: Path, extra_plugins: Sequence[dict[str, object]] = ()
) -> tuple[str, str, str]:
    """A test conflist in the config's network dir: (network name, bridge, subnet).

    ``extra_plugins`` are chained after the bridge network's own."""
    name = f"crid-test-{secrets.token_hex(3)}"
    bridge = random_bridge_name()
    subnet = random_test_subnet()
    conf = bridge_network(
        name=name, bridge=bridge, subnet=subnet, data_dir=tmp / "ipam", loopback=True
    )
    conf["plugins"].extend(extra_plugins)
    (tmp / "net.d").mkdir(exist_ok=True)
    (tmp / "net.d" / "10-test.conflist").write_text(json.dumps(conf))
    return name, bridge, str(subnet)


@contextlib.asynccontextmanager
async def crid_env(
    tmp: Path,
    runtime: str = "",
    *,
    network_lines: str = "",
    extra_plugins: Sequence[dict[str, object]] = (),
    nri_lines: str = "",
) -> AsyncIterator[Env]:
    """``runtime``: more lines for ``[crid.runtime]``; ``network_lines`` for
    ``[crid.network]``; ``nri_lines`` for ``[crid.nri]``; ``extra_plugins``: CNI plugins
    chained after the test network's."""
    network, bridge, subnet = write_network(tmp, extra_plugins)
    _, config = make_config(tmp, runtime_table(tmp, runtime), network_lines, nri_lines)
    parent = f"crid-test-{secrets.token_hex(4)}"
    daemon = Daemon(config)
    await daemon.start()
    try:
        assert daemon.context is not None
        await asyncio.to_thread(load_built, daemon.context.store.store, BUILT, [IMAGE])
        async with grpc.aio.insecure_channel(f"unix://{daemon.socket_path}") as channel:
            env = Env(
                tmp=tmp,
                daemon=daemon,
                stub=api_pb2_grpc.RuntimeServiceStub(channel),
                cgroup_parent=parent,
                subnet=subnet,
                network=network,
            )
            try:
                yield env
            finally:
                for pod in list(daemon.context.registry.sandboxes()):
                    with contextlib.suppress(Exception):
                        await env.lifecycle.pods.remove(pod.id)
    finally:
        await daemon.stop(grace=0)
        delete_link(bridge)
        remove_iptables_rules_mentioning(network)
        Hierarchies.detect().remove(parent)


def pod_config(env: Env, name: str = "web", **extra: object) -> api_pb2.PodSandboxConfig:
    config = api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="default"),
        hostname=f"{name}-host",
        log_directory=str(env.tmp / "logs" / name),
        labels={"app": name},
        annotations={"note": "a"},
        linux=api_pb2.LinuxPodSandboxConfig(cgroup_parent=f"/{env.cgroup_parent}/{name}"),
    )
    # As the kubelet sends it: a PID namespace per container unless the pod shares one.
    config.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    for key, value in extra.items():
        if key == "dns":
            config.dns_config.CopyFrom(value)  # type: ignore[arg-type]
        elif key == "ports":
            config.port_mappings.extend(value)  # type: ignore[arg-type]
        elif key == "sysctls":
            config.linux.sysctls.update(value)  # type: ignore[arg-type]
        elif key == "pid":  # a NamespaceMode
            config.linux.security_context.namespace_options.pid = value  # type: ignore[assignment]
        else:
            raise AssertionError(key)
    return config


def container_config(name: str, args: list[str], **fields: object) -> api_pb2.ContainerConfig:
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name=name),
        image=api_pb2.ImageSpec(image=IMAGE),
        command=["sh", "-c"],
        args=args,
        log_path=f"{name}.log",
        labels={"c": name},
    )
    config.linux.security_context.namespace_options.pid = api_pb2.CONTAINER
    for key, value in fields.items():
        if key == "resources":
            config.linux.resources.CopyFrom(value)  # type: ignore[arg-type]
        elif key == "annotations":
            config.annotations.update(value)  # type: ignore[arg-type]
        elif key == "pid":  # a NamespaceMode
            config.linux.security_context.namespace_options.pid = value  # type: ignore[assignment]
        else:
            raise AssertionError(key)
    return config


async def run_pod(env: Env, config: api_pb2.PodSandboxConfig) -> str:
    reply = await env.stub.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config))
    return str(reply.pod_sandbox_id)


async def start_container(
    env: Env, pod_id: str, pod: api_pb2.PodSandboxConfig, config: api_pb2.ContainerConfig
) -> str:
    reply = await env.stub.CreateContainer(
        api_pb2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
    )
    await env.stub.StartContainer(api_pb2.StartContainerRequest(container_id=reply.container_id))
    return str(reply.container_id)


async def status(env: Env, container_id: str) -> api_pb2.ContainerStatus:
    reply = await env.stub.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=container_id)
    )
    return reply.status


async def wait_exited(
    env: Env, container_id: str, timeout: float = 10.0
) -> api_pb2.ContainerStatus:
    deadline = time.monotonic() + timeout
    while True:
        found = await status(env, container_id)
        if found.state == api_pb2.CONTAINER_EXITED:
            return found
        assert time.monotonic() < deadline, f"{container_id} still {found.state}"
        await asyncio.sleep(0.05)


async def wait_for_comm(env: Env, container_id: str, comm: str, timeout: float = 10.0) -> None:
    """Wait until the container's process runs the program ``comm``."""
    reply = await env.stub.ContainerStatus(
        api_pb2.ContainerStatusRequest(container_id=container_id, verbose=True)
    )
    pid = json.loads(reply.info["info"])["pid"]
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/comm").read_text().strip() != comm:
        assert time.monotonic() < deadline, f"{container_id} never ran {comm}"
        await asyncio.sleep(0.01)


async def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        assert time.monotonic() < deadline, f"{text!r} not in {path}: {content!r}"
        await asyncio.sleep(0.05)


async def exec_sync(
    env: Env, container_id: str, cmd: list[str], timeout: int = 10
) -> api_pb2.ExecSyncResponse:
    return await env.stub.ExecSync(
        api_pb2.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
    )


def is_mount(path: Path) -> bool:
    return any(
        line.split()[4] == str(path)
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )
