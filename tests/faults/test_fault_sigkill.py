"""crid killed with SIGKILL inside each RPC of a pod's life: restarted, then cleaned up
through the CRI alone (as the kubelet would: list, stop, remove), it leaves nothing.

A fault point (``crid.faults``) makes crid kill itself at a named place in the middle
of the RPC; the leak checker compares the node with its state before the pod was made.
"""

from __future__ import annotations

import signal

import grpc
import pytest

from crid._cri.v1 import api_pb2
from ociimage.testing import TestImages

from ._leaks import assert_no_leaks, snapshot
from ._lifecycle import POINTS, Pod, assert_whole, call, containers, pods, run_until
from ._node import Node

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.binaries("runc", "conmon", "catatonit", "iptables-save", "/usr/lib/cni/bridge"),
]


def _killed_at(node: Node, point: str, err: grpc.RpcError) -> None:
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err
    assert node.wait_exit() == -signal.SIGKILL
    assert node.reached() == [point]
    node.set_fault()
    node.start()


@pytest.mark.parametrize(("point", "rpc"), POINTS, ids=[rpc for _point, rpc in POINTS])
def test_fault_sigkill_inside(node: Node, test_images: TestImages, point: str, rpc: str) -> None:
    before = snapshot(node.scope)
    pod = Pod(config=node.pod_config(f"kill-{rpc.lower()}"), image=test_images.busybox.reference)
    run_until(node, pod, point)
    node.set_fault(point, "kill")
    with pytest.raises(grpc.RpcError) as cut:
        call(node, pod, point)
    _killed_at(node, point, cut.value)
    assert_whole(node)
    if point == "start_container.started":  # the runtime had started it: it runs
        assert containers(node) == {pod.container_id: api_pb2.CONTAINER_RUNNING}
    if point in ("run_pod_sandbox.network", "create_container.conmon"):
        assert not containers(node)  # a create cut short is gone ...
        if point == "run_pod_sandbox.network":  # ... a pod cut short waits for removal
            assert [s for s in pods(node).values()] == [api_pb2.SANDBOX_NOTREADY]
    node.clean_up()
    assert_no_leaks(before, node.scope)


def test_fault_sigkill_inside_pull_image(node: Node, test_images: TestImages) -> None:
    """Killed after every blob is stored but before the image is recorded: the blobs and
    layers go at the next start (store GC), and the next pull works."""
    before = snapshot(node.scope)
    spec = api_pb2.ImageSpec(image=test_images.layered.reference)
    node.set_fault("pull_image.commit", "kill")
    with pytest.raises(grpc.RpcError) as cut:
        node.images.PullImage(api_pb2.PullImageRequest(image=spec), timeout=60)
    _killed_at(node, "pull_image.commit", cut.value)
    assert not node.images.ImageStatus(api_pb2.ImageStatusRequest(image=spec)).HasField("image")
    assert_no_leaks(before, node.scope)
    node.images.PullImage(api_pb2.PullImageRequest(image=spec), timeout=60)
    assert node.images.ImageStatus(api_pb2.ImageStatusRequest(image=spec)).HasField("image")
