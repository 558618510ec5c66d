"""Exceptions raised by crid itself.

Every error crid raises derives from :class:`CridError`; the libraries keep their
own hierarchies, and ``crid.rpc_errors`` maps all of them to gRPC status codes.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousIdError",
    "CgroupError",
    "ConfigError",
    "ConmonError",
    "ContainerNotFoundError",
    "ContainerNotRunningError",
    "CridError",
    "ExecTimeoutError",
    "InfraImageError",
    "InvalidConfigError",
    "InvalidRequestError",
    "InvalidStateError",
    "NRIClosedError",
    "NRIError",
    "NRIPluginError",
    "NRIProtocolError",
    "NRIRejectedError",
    "NRITimeoutError",
    "NameReservedError",
    "NotFoundError",
    "NotSupportedError",
    "OCIRuntimeError",
    "RuntimeHandlerError",
    "RuntimeTimeoutError",
    "SandboxNotReadyError",
    "SocketInUseError",
    "SpdyProtocolError",
    "StateError",
    "StreamTokenError",
    "StreamingError",
    "UnsupportedConfigError",
]


class CridError(Exception):
    """Base class of every error raised by crid."""


class ConfigError(CridError):
    """The configuration is invalid: names the file, the key and what is wrong."""


class SocketInUseError(CridError):
    """Another live process already serves on the configured socket."""


class OCIRuntimeError(CridError):
    """The OCI runtime (runc) refused or failed a command; carries its own message."""

    def __init__(self, message: str, *, command: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.stderr = stderr


class ContainerNotFoundError(OCIRuntimeError):
    """The OCI runtime has no container with this id."""


class RuntimeTimeoutError(CridError):
    """The OCI runtime (or conmon running its create) did not finish within its
    configured timeout; it was killed and reaped. The message names the command."""


class ConmonError(CridError):
    """conmon could not start a container: it exited early or reported a failure."""


class StateError(CridError):
    """The state database could not be read or written."""


class NotFoundError(CridError):
    """No pod sandbox or container has this id (or unique id prefix)."""


class NameReservedError(CridError):
    """A pod sandbox or container with the same name (metadata) already exists."""

    def __init__(self, message: str, *, existing_id: str) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class AmbiguousIdError(CridError):
    """An id prefix matches more than one pod sandbox or container."""


class CgroupError(CridError):
    """A cgroup could not be created or removed."""


class RuntimeHandlerError(CridError):
    """A pod asked for a runtime handler that is not configured or not installed."""


class InvalidConfigError(CridError):
    """A pod or container config the kubelet sent is incomplete or contradictory."""


class UnsupportedConfigError(CridError):
    """The request asks for something this crid is configured not to do; names the option."""


class InfraImageError(CridError):
    """The pause image of an infra container is neither stored nor pullable; names it."""


class SandboxNotReadyError(CridError):
    """A container was asked for in a pod sandbox that is stopped (or being removed)."""


class ExecTimeoutError(CridError):
    """An ExecSync command ran past its timeout and was killed."""


class InvalidStateError(CridError):
    """The container is not in a state that allows this (e.g. starting a running one)."""


class InvalidRequestError(CridError):
    """A request field has a value crid cannot accept (names the field and the value)."""


class ContainerNotRunningError(CridError):
    """The operation needs a running (or created) container, and this one is not."""


class NotSupportedError(CridError):
    """The operation needs something this host or crid lacks (CRIU for checkpoints)."""


class StreamingError(CridError):
    """The streaming server (exec, attach, port-forward) could not serve a session."""


class SpdyProtocolError(StreamingError):
    """A SPDY peer sent a malformed or out-of-order frame: its connection is closed."""


class StreamTokenError(StreamingError):
    """A streaming URL's token is unknown, already used or expired."""


class NRIError(CridError):
    """Node Resource Interface: a plugin connection or call failed."""


class NRIProtocolError(NRIError):
    """An NRI peer sent a frame or message that breaks the ttrpc or multiplexer format."""


class NRIClosedError(NRIError):
    """The NRI connection is closed (the peer went away or was disconnected)."""


class NRITimeoutError(NRIError):
    """An NRI peer did not answer within the request (or registration) timeout."""


class NRIPluginError(NRIError):
    """An NRI plugin answered a call with an error; carries its status code and message."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class NRIRejectedError(NRIPluginError):
    """A validating NRI plugin rejected the adjustments other plugins asked for."""
