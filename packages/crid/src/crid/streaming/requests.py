"""What a streaming URL was issued for: the validated Exec, Attach or PortForward request."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AttachRequest", "ExecRequest", "PortForwardRequest", "StreamRequest"]


@dataclass(frozen=True, kw_only=True)
class ExecRequest:
    """Run ``command`` in a running container."""

    container_id: str
    command: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True, kw_only=True)
class AttachRequest:
    """Attach to a running container's own stdio (held by conmon)."""

    container_id: str
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True, kw_only=True)
class PortForwardRequest:
    """Forward connections to ports inside a pod's network namespace."""

    sandbox_id: str
    netns: str
    ports: tuple[int, ...] = ()


StreamRequest = ExecRequest | AttachRequest | PortForwardRequest
