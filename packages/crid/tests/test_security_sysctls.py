"""Seccomp profiles and pod sysctls through the CRI, end to end (real runc under conmon,
a CNI bridge network, the busybox image): what a process in the container sees.

The behaviours are those of critest's "SeccompProfilePath" and "runtime should support
sysctls" specs, plus the refusals a runtime owes the node.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import grpc
import pytest

from crid._cri.v1 import api_pb2

from ._lifecycle import (
    Env,
    container_config,
    crid_env,
    exec_sync,
    pod_config,
    run_pod,
    start_container,
)
from .test_sandbox_infra import PAUSE, infra_lines, infra_pid

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries(
        "runc",
        "conmon",
        "iptables",
        "nsenter",
        "ip",
        "/usr/bin/python3",
        "/usr/bin/busybox",
        "/usr/lib/cni/bridge",
    ),
]

Profile = api_pb2.SecurityProfile

#: critest's profile: everything allowed but sethostname.
BLOCK_HOSTNAME = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}],
}


async def _seccomp_container(
    env: Env,
    pod_id: str,
    pod: api_pb2.PodSandboxConfig,
    name: str,
    profile: api_pb2.SecurityProfile | None,
    *,
    privileged: bool = False,
    add_caps: tuple[str, ...] = (),
) -> str:
    config = container_config(name, ["sleep 3600"])
    sc = config.linux.security_context
    if profile is not None:
        sc.seccomp.CopyFrom(profile)
    sc.privileged = privileged
    sc.capabilities.add_capabilities.extend(add_caps)
    return await start_container(env, pod_id, pod, config)


async def _seccomp_mode(env: Env, container_id: str) -> str:
    out = await exec_sync(env, container_id, ["grep", "Seccomp:", "/proc/self/status"])
    assert out.exit_code == 0, out.stderr
    return out.stdout.decode().split()[-1]


async def test_seccomp_nil_profile_is_unconfined_and_runtime_default_filters(
    tmp_path: Path,
) -> None:
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "seccomp")
        pod_id = await run_pod(env, pod)
        nil = await _seccomp_container(env, pod_id, pod, "nil", None)
        assert await _seccomp_mode(env, nil) == "0"
        # SecurityProfile{} is present: its zero type is RuntimeDefault, a filter (mode 2).
        default = await _seccomp_container(env, pod_id, pod, "default", Profile())
        assert await _seccomp_mode(env, default) == "2"
        unconfined = await _seccomp_container(
            env, pod_id, pod, "unconfined", Profile(profile_type=Profile.Unconfined)
        )
        assert await _seccomp_mode(env, unconfined) == "0"


async def test_seccomp_localhost_profile_binds_unless_privileged(tmp_path: Path) -> None:
    profile_path = tmp_path / "block-hostname.json"
    profile_path.write_text(json.dumps(BLOCK_HOSTNAME))
    block = Profile(profile_type=Profile.Localhost, localhost_ref=str(profile_path))
    async with crid_env(tmp_path) as env:
        pod = pod_config(env, "plain")
        pod_id = await run_pod(env, pod)
        # CAP_SYS_ADMIN allows sethostname: only the profile can stop it.
        blocked = await _seccomp_container(
            env, pod_id, pod, "blocked", block, add_caps=("SYS_ADMIN",)
        )
        assert await _seccomp_mode(env, blocked) == "2"
        out = await exec_sync(env, blocked, ["hostname", "ANewHostName"])
        assert out.exit_code != 0
        assert b"Operation not permitted" in out.stderr, out.stderr
        free = await _seccomp_container(
            env,
            pod_id,
            pod,
            "free",
            Profile(profile_type=Profile.Unconfined),
            add_caps=("SYS_ADMIN",),
        )
        out = await exec_sync(env, free, ["hostname", "FreeHostName"])
        assert out.exit_code == 0, out.stderr

        privileged_pod = pod_config(env, "privileged")
        privileged_pod.linux.security_context.privileged = True
        privileged_id = await run_pod(env, privileged_pod)
        privileged = await _seccomp_container(
            env, privileged_id, privileged_pod, "privileged", block, privileged=True
        )
        assert await _seccomp_mode(env, privileged) == "0"
        out = await exec_sync(env, privileged, ["sh", "-c", "hostname ANewHostName && hostname"])
        assert (out.exit_code, out.stdout) == (0, b"ANewHostName\n"), out.stderr


async def _process_seccomp(pid: int, command: str) -> str:
    """The Seccomp mode of ``pid`` once it runs ``command`` (runc installs the filter
    just before it execs)."""
    deadline = time.monotonic() + 10
    while command not in Path(f"/proc/{pid}/cmdline").read_text():
        assert time.monotonic() < deadline, f"{pid} never ran {command!r}"
        await asyncio.sleep(0.05)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Seccomp:"):
            return line.split()[-1]
    raise AssertionError(f"no Seccomp line for {pid}")


async def test_infra_container_takes_the_pods_seccomp_profile(tmp_path: Path) -> None:
    async with crid_env(tmp_path, infra_lines()) as env:
        cases: list[tuple[str, api_pb2.SecurityProfile | None, bool, str]] = [
            ("nil", None, False, "0"),
            ("default", Profile(), False, "2"),
            ("privileged", Profile(), True, "0"),
        ]
        for name, profile, privileged, mode in cases:
            pod = pod_config(env, name)
            if profile is not None:
                pod.linux.security_context.seccomp.CopyFrom(profile)
            pod.linux.security_context.privileged = privileged
            pod_id = await run_pod(env, pod)
            assert await _process_seccomp(await infra_pid(env, pod_id), PAUSE) == mode, name


# -- sysctls ----------------------------------------------------------------------------

#: A CNI plugin chained after the bridge: it adds a veth pair whose names hold dots
#: (as VLAN interfaces' do) to the pod's network namespace, then passes the result on.
_LINKS_PLUGIN = """#!/usr/bin/python3
import json, os, subprocess, sys

conf = json.load(sys.stdin)
command = os.environ.get("CNI_COMMAND")
if command == "VERSION":
    print(json.dumps({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]}))
elif command == "ADD":
    subprocess.run(
        ["/usr/bin/nsenter", "--net=" + os.environ["CNI_NETNS"], "/usr/sbin/ip", "link", "add",
         conf["link"], "type", "veth", "peer", "name", conf["peer"]],
        check=True,
    )
    print(json.dumps(conf["prevResult"]))
"""


def _links_plugin(tmp: Path) -> str:
    directory = tmp / "cni-bin"
    directory.mkdir()
    plugin = directory / "crid-test-links"
    plugin.write_text(_LINKS_PLUGIN)
    plugin.chmod(0o755)
    return f'plugin_dirs = ["{directory}", "/usr/lib/cni"]\n'


async def test_pod_sysctls_are_applied_inside_the_pod(tmp_path: Path) -> None:
    assert os.access("/usr/sbin/ip", os.X_OK) and os.access("/usr/bin/nsenter", os.X_OK)
    sysctls = {
        "kernel.shm_rmid_forced": "1",  # safe
        "fs.mqueue.msg_max": "100",  # unsafe for the kubelet, still namespaced: applied
        "net.ipv4.conf.eth0.arp_ignore": "1",  # CNI's interface: written after the ADD
        "net/ipv4/conf/eth0.100/arp_ignore": "2",  # '/' spelling, a dot in the interface
        "net.ipv4.conf.eth0/100.arp_announce": "2",  # '.' spelling of the same interface
    }
    files = {
        "/proc/sys/kernel/shm_rmid_forced": "1",
        "/proc/sys/fs/mqueue/msg_max": "100",
        "/proc/sys/net/ipv4/conf/eth0/arp_ignore": "1",
        "/proc/sys/net/ipv4/conf/eth0.100/arp_ignore": "2",
        "/proc/sys/net/ipv4/conf/eth0.100/arp_announce": "2",
    }
    plugin = {"type": "crid-test-links", "link": "eth0.100", "peer": "peer.100"}
    async with crid_env(
        tmp_path, network_lines=_links_plugin(tmp_path), extra_plugins=[plugin]
    ) as env:
        host_msg_max = Path("/proc/sys/fs/mqueue/msg_max").read_text()
        pod = pod_config(env, "sysctls", sysctls=sysctls)
        pod_id = await run_pod(env, pod)
        cid = await start_container(env, pod_id, pod, container_config("main", ["sleep 3600"]))
        out = await exec_sync(env, cid, ["cat", *files])
        assert out.exit_code == 0, out.stderr
        assert out.stdout.decode().split("\n")[:-1] == list(files.values())
        assert Path("/proc/sys/fs/mqueue/msg_max").read_text() == host_msg_max  # the node's


async def _refused(env: Env, config: api_pb2.PodSandboxConfig) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await run_pod(env, config)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await env.stub.ListPodSandbox(api_pb2.ListPodSandboxRequest())
    assert not listed.items  # nothing left behind
    return info.value.details() or ""


async def test_pod_sysctls_that_would_reach_the_node_are_refused(tmp_path: Path) -> None:
    async with crid_env(tmp_path) as env:
        for name in ("vm.swappiness", "kernel.panic", "kernel/panic"):
            details = await _refused(env, pod_config(env, "node", sysctls={name: "1"}))
            assert "not namespaced" in details and name.replace("/", ".") in details
        host_net = pod_config(env, "hostnet", sysctls={"net.core.somaxconn": "1024"})
        host_net.linux.security_context.namespace_options.network = api_pb2.NODE
        details = await _refused(env, host_net)
        assert "net.core.somaxconn" in details and "host network" in details
        host_ipc = pod_config(env, "hostipc", sysctls={"fs.mqueue.msg_max": "100"})
        host_ipc.linux.security_context.namespace_options.ipc = api_pb2.NODE
        details = await _refused(env, host_ipc)
        assert "fs.mqueue.msg_max" in details and "host IPC" in details
        escape = pod_config(env, "escape", sysctls={"net/../../sysrq-trigger": "h"})
        assert "invalid sysctl name" in await _refused(env, escape)
        # Namespaced and well formed, but the kernel has no such file: refused, undone.
        missing = pod_config(env, "missing", sysctls={"net.ipv4.conf.nosuch0.forwarding": "1"})
        details = await _refused(env, missing)
        assert "net.ipv4.conf.nosuch0.forwarding" in details
