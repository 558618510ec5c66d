"""crid stopped with SIGTERM while an RPC of a pod's life is in flight.

A clean stop refuses new RPCs at once, lets the one in flight finish within
``shutdown_grace`` (1s here) or cancels it and rolls it back, and exits 0. After the
restart every pod is READY and whole, NOTREADY awaiting removal, or absent; the kubelet's
cleanup through the CRI then leaves nothing behind. ``finish`` pauses the RPC at its fault
point for less than the grace period, ``cancel`` for far longer.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

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

PAUSE = {"finish": 0.3, "cancel": 60.0, "cancel-pull": 3.0}
READY, NOTREADY = api_pb2.SANDBOX_READY, api_pb2.SANDBOX_NOTREADY
CREATED, RUNNING, EXITED = (
    api_pb2.CONTAINER_CREATED,
    api_pb2.CONTAINER_RUNNING,
    api_pb2.CONTAINER_EXITED,
)
#: After the restart: (pod states, container states) once the RPC finished / was cancelled.
EXPECTED: dict[tuple[str, str], tuple[list[int], list[int]]] = {
    ("run_pod_sandbox.network", "finish"): ([READY], []),
    ("run_pod_sandbox.network", "cancel"): ([], []),
    ("create_container.conmon", "finish"): ([READY], [CREATED]),
    ("create_container.conmon", "cancel"): ([READY], []),
    ("start_container.started", "finish"): ([READY], [RUNNING]),
    ("start_container.started", "cancel"): ([READY], [RUNNING]),
    ("exec_sync.running", "finish"): ([READY], [RUNNING]),
    ("exec_sync.running", "cancel"): ([READY], [RUNNING]),
    ("stop_container.signalled", "finish"): ([READY], [EXITED]),
    ("stop_container.signalled", "cancel"): ([READY], [EXITED]),
    ("remove_container.runtime_deleted", "finish"): ([READY], []),
    ("remove_container.runtime_deleted", "cancel"): ([READY], [EXITED]),
    ("stop_pod_sandbox.containers_stopped", "finish"): ([NOTREADY], []),
    ("stop_pod_sandbox.containers_stopped", "cancel"): ([READY], []),
    ("remove_pod_sandbox.containers_removed", "finish"): ([], []),
    ("remove_pod_sandbox.containers_removed", "cancel"): ([NOTREADY], []),
}
#: The cases ``make test`` runs (each kind of outcome once); the rest run under ``make soak``.
QUICK = {
    ("run_pod_sandbox.network", "finish"),
    ("run_pod_sandbox.network", "cancel"),
    ("create_container.conmon", "cancel"),
    ("start_container.started", "cancel"),
    ("exec_sync.running", "finish"),
    ("stop_container.signalled", "finish"),
    ("remove_pod_sandbox.containers_removed", "cancel"),
}
CASES = [
    pytest.param(
        point,
        variant,
        id=f"{rpc}-{variant}",
        marks=() if (point, variant) in QUICK else (pytest.mark.soak,),
    )
    for point, rpc in POINTS
    for variant in ("finish", "cancel")
]


def _stop_during(node: Node, point: str, rpc: object, variant: str) -> BaseException | None:
    """Run ``rpc`` until it pauses at ``point``, send SIGTERM, return its error."""
    node.set_fault(point, f"pause {PAUSE[variant]}")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(rpc)  # type: ignore[arg-type]
        node.wait_reached(point)
        node.signal(signal.SIGTERM)
        if variant == "finish":  # new RPCs are refused while the one in flight runs on
            deadline = time.monotonic() + 5
            while "crid stopping" not in node.log_tail():
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.05)
            with pytest.raises(grpc.RpcError):
                node.runtime.Version(api_pb2.VersionRequest(), timeout=1)
        error = future.exception(timeout=60)
    assert node.wait_exit(30) == 0, node.log_tail()
    node.set_fault()
    node.start()
    return error


@pytest.mark.parametrize(("point", "variant"), CASES)
def test_fault_sigterm_during(
    node: Node, test_images: TestImages, point: str, variant: str
) -> None:
    before = snapshot(node.scope)
    pod = Pod(
        config=node.pod_config(f"term-{point.split('.')[0].replace('_', '-')}"),
        image=test_images.busybox.reference,
    )
    run_until(node, pod, point)
    error = _stop_during(node, point, lambda: call(node, pod, point), variant)
    if variant == "finish":
        assert error is None, error
    else:
        assert isinstance(error, grpc.RpcError), error
    want_pods, want_containers = EXPECTED[(point, variant)]
    assert sorted(pods(node).values()) == want_pods
    assert sorted(containers(node).values()) == want_containers
    assert_whole(node)
    node.clean_up()
    assert_no_leaks(before, node.scope)


def test_fault_sigterm_during_pull_image(node: Node, test_images: TestImages) -> None:
    """A pull in flight finishes within the grace period: the image is whole."""
    spec = api_pb2.ImageSpec(image=test_images.user_env.reference)
    error = _stop_during(
        node,
        "pull_image.commit",
        lambda: node.images.PullImage(api_pb2.PullImageRequest(image=spec), timeout=60),
        "finish",
    )
    assert error is None, error
    assert node.images.ImageStatus(api_pb2.ImageStatusRequest(image=spec)).HasField("image")


@pytest.mark.soak
def test_fault_sigterm_during_pull_image_cancel(node: Node, test_images: TestImages) -> None:
    """A pull held past the grace period: crid still exits, and afterwards the image is
    either whole or absent, with no blobs or layers of a half pull left."""
    spec = api_pb2.ImageSpec(image=test_images.layered.reference)
    before = snapshot(node.scope)
    error = _stop_during(
        node,
        "pull_image.commit",
        lambda: node.images.PullImage(api_pb2.PullImageRequest(image=spec), timeout=60),
        "cancel-pull",
    )
    assert isinstance(error, grpc.RpcError), error
    status = node.images.ImageStatus(api_pb2.ImageStatusRequest(image=spec))
    if status.HasField("image"):
        node.images.RemoveImage(api_pb2.RemoveImageRequest(image=spec))
    print("pull cancelled at SIGTERM: image", "whole" if status.HasField("image") else "absent")
    node.set_fault()
    node.stop()
    node.start()  # the store GC at start removes what the image no longer holds
    assert_no_leaks(before, node.scope)
