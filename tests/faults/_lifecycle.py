"""A pod's life as the kubelet drives it, one RPC per fault point, in order.

``POINTS`` lists crid's fault points (``crid.faults``) in the order a pod's life reaches
them; :func:`call` makes the RPC that passes through a point. A case runs the steps before
its point normally, then the one that meets the fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from crid._cri.v1 import api_pb2

from ._node import Node

#: (fault point, the RPC it lies inside), in the order of a pod's life.
POINTS = (
    ("run_pod_sandbox.network", "RunPodSandbox"),
    ("create_container.conmon", "CreateContainer"),
    ("start_container.started", "StartContainer"),
    ("exec_sync.running", "ExecSync"),
    ("stop_container.signalled", "StopContainer"),
    ("remove_container.runtime_deleted", "RemoveContainer"),
    ("stop_pod_sandbox.containers_stopped", "StopPodSandbox"),
    ("remove_pod_sandbox.containers_removed", "RemovePodSandbox"),
)
RPC_TIMEOUT = 60.0


@dataclass
class Pod:
    """What the kubelet knows of one pod."""

    config: api_pb2.PodSandboxConfig
    image: str
    pod_id: str = ""
    container_id: str = ""


def call(node: Node, pod: Pod, point: str) -> None:
    """Make the RPC that passes through ``point``."""
    runtime, timeout = node.runtime, RPC_TIMEOUT
    if point == "run_pod_sandbox.network":
        reply = runtime.RunPodSandbox(
            api_pb2.RunPodSandboxRequest(config=pod.config), timeout=timeout
        )
        pod.pod_id = reply.pod_sandbox_id
    elif point == "create_container.conmon":
        created = runtime.CreateContainer(
            api_pb2.CreateContainerRequest(
                pod_sandbox_id=pod.pod_id,
                config=node.container_config(pod.image),
                sandbox_config=pod.config,
            ),
            timeout=timeout,
        )
        pod.container_id = created.container_id
    elif point == "start_container.started":
        runtime.StartContainer(
            api_pb2.StartContainerRequest(container_id=pod.container_id), timeout=timeout
        )
    elif point == "exec_sync.running":
        reply = runtime.ExecSync(
            api_pb2.ExecSyncRequest(
                container_id=pod.container_id, cmd=["sh", "-c", "sleep 0.05; echo ok"], timeout=30
            ),
            timeout=timeout,
        )
        assert (reply.exit_code, reply.stdout) == (0, b"ok\n")
    elif point == "stop_container.signalled":
        runtime.StopContainer(
            api_pb2.StopContainerRequest(container_id=pod.container_id, timeout=10),
            timeout=timeout,
        )
    elif point == "remove_container.runtime_deleted":
        runtime.RemoveContainer(
            api_pb2.RemoveContainerRequest(container_id=pod.container_id), timeout=timeout
        )
    elif point == "stop_pod_sandbox.containers_stopped":
        runtime.StopPodSandbox(
            api_pb2.StopPodSandboxRequest(pod_sandbox_id=pod.pod_id), timeout=timeout
        )
    elif point == "remove_pod_sandbox.containers_removed":
        runtime.RemovePodSandbox(
            api_pb2.RemovePodSandboxRequest(pod_sandbox_id=pod.pod_id), timeout=timeout
        )
    else:
        raise AssertionError(f"no RPC for {point}")


def run_until(node: Node, pod: Pod, point: str) -> None:
    """Every step of the pod's life before ``point``."""
    for earlier, _rpc in POINTS:
        if earlier == point:
            return
        call(node, pod, earlier)
    raise AssertionError(f"unknown point {point}")


def pods(node: Node) -> dict[str, int]:
    return {
        p.id: p.state for p in node.runtime.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items
    }


def containers(node: Node) -> dict[str, int]:
    listed = node.runtime.ListContainers(api_pb2.ListContainersRequest()).containers
    return {c.id: c.state for c in listed}


def assert_whole(node: Node) -> None:
    """Every pod listed is READY with its network, or NOTREADY; every container of a
    listed pod, listed with a definite state."""
    for pod_id, state in pods(node).items():
        status = node.runtime.PodSandboxStatus(
            api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        ).status
        if state == api_pb2.SANDBOX_READY:
            assert status.network.ip, f"READY pod {pod_id} has no IP"
    known = set(pods(node))
    for container_id, state in containers(node).items():
        status = node.runtime.ContainerStatus(
            api_pb2.ContainerStatusRequest(container_id=container_id)
        ).status
        assert status.metadata.name, container_id
        assert state in (
            api_pb2.CONTAINER_CREATED,
            api_pb2.CONTAINER_RUNNING,
            api_pb2.CONTAINER_EXITED,
        ), (container_id, state)
        listed = node.runtime.ListContainers(
            api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(id=container_id))
        ).containers
        assert listed[0].pod_sandbox_id in known, f"container {container_id} has no pod"
