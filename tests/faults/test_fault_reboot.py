"""A node reboot under crid: every process gone, runroot (a tmpfs on a real node) wiped,
every mount gone, then crid starts again.

Pods come back NOTREADY and their containers EXITED with a reason; nothing stale stays
mounted; the kubelet's next RunPodSandbox and CreateContainer for the same pods (same
metadata, attempt + 1) work; and removing everything through the CRI leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from crid._cri.v1 import api_pb2
from crid.cgroups import Hierarchies
from ociimage.testing import TestImages
from ocinet.testing import remove_iptables_rules_mentioning

from ._leaks import assert_no_leaks, processes, snapshot
from ._lifecycle import containers, pods
from ._node import Node

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.binaries("runc", "conmon", "catatonit", "iptables-save", "/usr/lib/cni/bridge"),
]


def _reboot(node: Node) -> None:
    """What a reboot does to the node's crid: SIGKILL everything, unmount, wipe runroot."""
    node.signal(signal.SIGKILL)
    node.wait_exit()
    for entry in processes(node.scope):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(entry.split("@", 1)[0]), signal.SIGKILL)
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    for line in reversed(lines):
        target = line.split()[4]
        if target.startswith((f"{node.scope.root}/", f"{node.scope.runroot}/")):
            subprocess.run(["umount", "-l", target], check=True)
    shutil.rmtree(node.scope.runroot)
    # iptables rules and cgroups do not survive a reboot either; host-local leases
    # (on disk) and the state database do.
    remove_iptables_rules_mentioning(node.network)
    Hierarchies.detect().remove(node.cgroup_parent)


def _start_pod(node: Node, image: str, name: str, attempt: int) -> tuple[str, str]:
    config = node.pod_config(name, attempt)
    pod_id = node.runtime.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
    container_id = node.runtime.CreateContainer(
        api_pb2.CreateContainerRequest(
            pod_sandbox_id=pod_id,
            config=node.container_config(image, attempt=attempt),
            sandbox_config=config,
        )
    ).container_id
    node.runtime.StartContainer(api_pb2.StartContainerRequest(container_id=container_id))
    return pod_id, container_id


def test_fault_node_reboot(node: Node, test_images: TestImages) -> None:
    image = test_images.busybox.reference
    before = snapshot(node.scope)
    old = [_start_pod(node, image, name, 0) for name in ("reboot-a", "reboot-b")]

    _reboot(node)
    node.start()

    assert pods(node) == {pod_id: api_pb2.SANDBOX_NOTREADY for pod_id, _c in old}
    assert containers(node) == {cid: api_pb2.CONTAINER_EXITED for _p, cid in old}
    for _pod_id, container_id in old:
        status = node.runtime.ContainerStatus(
            api_pb2.ContainerStatusRequest(container_id=container_id)
        ).status
        assert (status.reason, status.exit_code) == ("Error", 255)
        assert status.message
    assert not snapshot(node.scope).mounts

    new = [_start_pod(node, image, name, 1) for name in ("reboot-a", "reboot-b")]
    for pod_id, container_id in new:
        assert pods(node)[pod_id] == api_pb2.SANDBOX_READY
        assert containers(node)[container_id] == api_pb2.CONTAINER_RUNNING
        reply = node.runtime.ExecSync(
            api_pb2.ExecSyncRequest(container_id=container_id, cmd=["echo", "back"], timeout=10)
        )
        assert reply.stdout == b"back\n"

    node.clean_up()
    assert_no_leaks(before, node.scope)
