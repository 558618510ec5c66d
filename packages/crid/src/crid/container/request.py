"""What CreateContainer asks for, in crid's own terms (``crid.translate`` fills it in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crid.state import ContainerMeta, PodMeta
from ocispec.generate import NamespaceMode

__all__ = ["ContainerRequest", "ImageVolumeRequest", "container_name"]


def container_name(meta: ContainerMeta, pod: PodMeta) -> str:
    """The reserved name: ``k8s_<name>_<pod>_<namespace>_<uid>_<attempt>``."""
    return f"k8s_{meta.name}_{pod.name}_{pod.namespace}_{pod.uid}_{meta.attempt}"


@dataclass(frozen=True, kw_only=True)
class ImageVolumeRequest:
    """A CRI mount of an image (KEP-4639): ``index`` is its place in the config's mounts."""

    index: int
    container_path: str
    image: str
    sub_path: str = ""


@dataclass(frozen=True, kw_only=True)
class ContainerRequest:
    """A validated container config; ``config`` is the serialized CRI ContainerConfig.

    ``pid`` and ``pid_target`` are its PID namespace mode and (TARGET) the container
    whose namespace it joins; ``recursive_read_only``: some mount asks for it (the
    runtime handler must support it); the rest of the config is translated once the root
    filesystem and the image config are known (``crid.translate.container_options``).
    """

    sandbox_id: str
    meta: ContainerMeta
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    log_path: str = ""
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    stop_signal: int = 0
    termination_message_path: str = ""
    pid: NamespaceMode = NamespaceMode.POD
    pid_target: str = ""
    privileged: bool = False
    recursive_read_only: bool = False
    #: The mounts of an image rather than a host path, mounted read-only by ocistore.
    image_volumes: tuple[ImageVolumeRequest, ...] = ()
    config: bytes = b""
