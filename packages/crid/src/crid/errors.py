"""Exceptions raised by crid itself.

Every error crid raises derives from :class:`CridError`; the libraries keep their
own hierarchies, and ``crid.rpc_errors`` maps all of them to gRPC status codes.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConmonError",
    "ContainerNotFoundError",
    "CridError",
    "OCIRuntimeError",
    "SocketInUseError",
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


class ConmonError(CridError):
    """conmon could not start a container: it exited early or reported a failure."""
