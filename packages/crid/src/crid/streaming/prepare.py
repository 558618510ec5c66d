"""Checking an Exec/Attach/PortForward request against crid's state before issuing a URL.

Unknown container or pod: NotFoundError; not running: ContainerNotRunningError (or a
pod not ready); nothing asked for: InvalidRequestError. The container check repeats when
the client connects (a container may stop in between).
"""

from __future__ import annotations

from crid.context import Context
from crid.errors import ContainerNotRunningError, InvalidRequestError
from crid.limits import check_argv
from crid.state import Container, ContainerState, SandboxState
from crid.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest

__all__ = ["check_attach", "check_exec", "check_port_forward", "running_container"]

HOST_NETNS = "/proc/self/ns/net"


def running_container(ctx: Context, container_id: str) -> Container:
    """The container's record, if it runs: the record follows conmon's exit file through
    the exit monitor, so asking the runtime (a ``runc state`` process) tells no more."""
    container = ctx.registry.container(container_id)
    if container.state is not ContainerState.RUNNING:
        raise ContainerNotRunningError(
            f"container {container.id} is {container.state}, not running"
        )
    return container


def _streams(*, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
    if not (stdin or stdout or stderr):
        raise InvalidRequestError("one of stdin, stdout or stderr must be requested")
    if tty and stderr:
        raise InvalidRequestError("tty and stderr cannot both be requested (a tty has one output)")


def check_exec(ctx: Context, request: ExecRequest) -> ExecRequest:
    """``request`` with the container's full id, once it can run."""
    if not request.command:
        raise InvalidRequestError("cmd: an exec needs a command")
    check_argv("Exec cmd", request.command)
    _streams(stdin=request.stdin, stdout=request.stdout, stderr=request.stderr, tty=request.tty)
    container = running_container(ctx, request.container_id)
    return ExecRequest(
        container_id=container.id,
        command=request.command,
        tty=request.tty,
        stdin=request.stdin,
        stdout=request.stdout,
        stderr=request.stderr,
    )


def check_attach(ctx: Context, request: AttachRequest, *, has_stdin: bool) -> AttachRequest:
    """``request`` with the container's full id; stdin only if it was created with one."""
    _streams(stdin=request.stdin, stdout=request.stdout, stderr=request.stderr, tty=request.tty)
    container = running_container(ctx, request.container_id)
    if request.stdin and not has_stdin:
        raise InvalidRequestError(
            f"stdin: container {container.id} was not created with stdin; attach without it"
        )
    return AttachRequest(
        container_id=container.id,
        tty=request.tty,
        stdin=request.stdin,
        stdout=request.stdout,
        stderr=request.stderr,
    )


def check_port_forward(ctx: Context, sandbox_id: str, ports: tuple[int, ...]) -> PortForwardRequest:
    """A port-forward request into the pod's network namespace (the host's if it has none)."""
    for port in ports:
        if not 0 < port < 65536:
            raise InvalidRequestError(f"port: {port} is not a TCP port")
    sandbox = ctx.registry.sandbox(sandbox_id)
    if sandbox.state is not SandboxState.READY:
        raise ContainerNotRunningError(f"pod sandbox {sandbox.id} is not ready")
    return PortForwardRequest(
        sandbox_id=sandbox.id, netns=sandbox.namespaces.get("network", HOST_NETNS), ports=ports
    )
