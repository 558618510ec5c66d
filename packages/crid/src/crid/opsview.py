"""What ``crid status``, ``crid check`` and ``crid wipe`` print: plain lines for people.

``crid status`` reads everything over the daemon's CRI socket (as ``crio status``
reads CRI-O's info endpoint): the effective configuration comes from ``Status``
with ``verbose``, the cgroup driver from ``RuntimeConfig``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import grpc
import msgspec

from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.config import Config, render_config
from crid.node import NodeCheck, WipeReport

__all__ = [
    "StatusClient",
    "check_lines",
    "wipe_lines",
]

_TIMEOUT = 10.0


class StatusClient:
    """A CRI client on the daemon's socket, for the ``crid status`` commands."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._channel = grpc.insecure_channel(f"unix://{socket_path}")
        self._runtime = api_pb2_grpc.RuntimeServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._channel.close()

    def _status(self) -> api_pb2.StatusResponse:
        response: api_pb2.StatusResponse = self._runtime.Status(
            api_pb2.StatusRequest(verbose=True), timeout=_TIMEOUT
        )
        return response

    def config_text(self) -> str:
        """The running daemon's effective configuration, as ``crid config`` prints it."""
        raw = json.loads(self._status().info["config"])
        return render_config(msgspec.convert(raw, Config))

    def info_lines(self) -> list[str]:
        version = self._runtime.Version(api_pb2.VersionRequest(), timeout=_TIMEOUT)
        status = self._status()
        config = msgspec.convert(json.loads(status.info["config"]), Config)
        driver = self._runtime.RuntimeConfig(api_pb2.RuntimeConfigRequest(), timeout=_TIMEOUT)
        cgroup_driver = api_pb2.CgroupDriver.Name(driver.linux.cgroup_driver).lower()
        crid = config.crid
        lines = [
            f"socket: {self.socket_path}",
            f"runtime: {version.runtime_name} {version.runtime_version}"
            f" (CRI {version.runtime_api_version})",
            f"cgroup driver: {cgroup_driver}",
            f"storage driver: {crid.storage_driver}",
            f"storage root: {crid.root}",
            f"run root: {crid.runroot}",
            f"default runtime: {crid.runtime.default_runtime}"
            f" (handlers: {', '.join(sorted(crid.runtime.runtimes))})",
            f"pod CIDR: {status.info.get('podCIDR', '') or '-'}",
        ]
        for condition in status.status.conditions:
            state = "true" if condition.status else "false"
            reason = f" ({condition.reason}: {condition.message})" if condition.reason else ""
            lines.append(f"condition {condition.type}: {state}{reason}")
        return lines

    def containers_lines(self) -> list[str]:
        pods = {
            pod.id: pod
            for pod in self._runtime.ListPodSandbox(
                api_pb2.ListPodSandboxRequest(), timeout=_TIMEOUT
            ).items
        }
        containers = self._runtime.ListContainers(
            api_pb2.ListContainersRequest(), timeout=_TIMEOUT
        ).containers
        lines = [f"{'CONTAINER':<13} {'NAME':<24} {'STATE':<18} {'POD':<32} IMAGE"]
        for c in sorted(containers, key=lambda c: c.created_at):
            pod = pods.get(c.pod_sandbox_id)
            pod_name = f"{pod.metadata.namespace}/{pod.metadata.name}" if pod else "?"
            state = api_pb2.ContainerState.Name(c.state).removeprefix("CONTAINER_").lower()
            lines.append(
                f"{c.id[:13]:<13} {c.metadata.name[:24]:<24} {state:<18} {pod_name[:32]:<32}"
                f" {c.image.image}"
            )
        lines.append(f"{len(containers)} container(s) in {len(pods)} pod(s)")
        return lines

    def container_json(self, container_id: str) -> str:
        """One container as JSON: what ``crio status containers --id`` shows."""
        response = self._runtime.ContainerStatus(
            api_pb2.ContainerStatusRequest(container_id=container_id, verbose=True),
            timeout=_TIMEOUT,
        )
        status = response.status
        info: dict[str, Any] = json.loads(response.info.get("info", "{}") or "{}")
        pod_id = ""
        ips: list[str] = []
        listed = self._runtime.ListContainers(
            api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(id=status.id)),
            timeout=_TIMEOUT,
        ).containers
        if listed:
            pod_id = listed[0].pod_sandbox_id
            pod = self._runtime.PodSandboxStatus(
                api_pb2.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=_TIMEOUT
            ).status
            ips = [pod.network.ip, *(ip.ip for ip in pod.network.additional_ips)]
            ips = [ip for ip in ips if ip]
        shown = {
            "id": status.id,
            "name": status.metadata.name,
            "pod_sandbox_id": pod_id,
            "state": api_pb2.ContainerState.Name(status.state).removeprefix("CONTAINER_").lower(),
            "pid": info.get("pid", 0),
            "image": status.image.image,
            "image_ref": status.image_ref,
            "created": _time(status.created_at),
            "started": _time(status.started_at),
            "finished": _time(status.finished_at),
            "exit_code": status.exit_code,
            "ip_addresses": ips,
            "log_path": status.log_path,
            "labels": dict(status.labels),
        }
        return json.dumps(shown, indent=2)


def _time(nanoseconds: int) -> str:
    if not nanoseconds:
        return ""
    return datetime.fromtimestamp(nanoseconds / 1e9, tz=UTC).isoformat()


def check_lines(result: NodeCheck) -> list[str]:
    """The summary of a check: one line per kind of finding, then the verdict."""
    verb = "repaired" if result.repaired else "found"
    lines = []
    store = result.store
    if store is None:
        lines.append("image store: none yet")
    else:
        half = store.half_done
        for label, items in (
            ("leftover temporary entries", half.temp_removed),
            ("dangling layer directories", half.layers_removed),
            ("layer records without a directory", half.layer_records_dropped),
            ("images missing a layer", half.images_dropped),
            ("layer links wrong or dangling", half.links_fixed),
            ("root filesystems without a record", half.containers_removed),
            ("root filesystem records without a directory", half.container_records_dropped),
            ("stray image volumes", half.volumes_removed),
            ("image volume records without a directory", half.volume_records_dropped),
            ("stray mounts", half.mounts_removed),
            ("corrupt blobs", store.corrupt_blobs),
            ("images missing their manifest or config blob", list(store.broken_images)),
        ):
            if items:
                lines.append(f"{verb}: {len(items)} {label}")
        lines.extend(f"left alone: image {i}: {why}" for i, why in store.left_alone.items())
    for container_id, why in result.dangling_records.items():
        lines.append(f"{verb}: container record {container_id}: {why}")
    if result.orphan_rootfs:
        lines.append(f"{verb}: {len(result.orphan_rootfs)} root filesystems no record owns")
    lines.extend(
        f"left alone: container {cid}: its process still runs" for cid in result.left_alone
    )
    if not result.damaged:
        lines.append("storage is consistent")
    elif result.clean_after:
        lines.append("storage repaired")
    else:
        lines.append("storage is damaged: run `crid check --repair` while crid is stopped")
    return lines


def wipe_lines(report: WipeReport) -> list[str]:
    """The summary of a wipe (or why it refused)."""
    if report.refused:
        return [
            *(f"running: container {cid}" for cid in report.running),
            f"refused: {len(report.running)} container(s) still run;"
            " stop them or pass --force to kill them",
        ]
    return [
        *(f"killed: container {cid}" for cid in report.killed),
        f"removed {report.pods} pod(s), {report.containers} container(s),"
        f" {report.images} image(s); unmounted {report.unmounted} mount(s)",
    ]
