"""Exceptions raised by crid itself.

Every error crid raises derives from :class:`CridError`; the libraries keep their
own hierarchies, and ``crid.rpc_errors`` maps all of them to gRPC status codes.
"""

from __future__ import annotations

__all__ = ["ConfigError", "CridError", "SocketInUseError"]


class CridError(Exception):
    """Base class of every error raised by crid."""


class ConfigError(CridError):
    """The configuration is invalid: names the file, the key and what is wrong."""


class SocketInUseError(CridError):
    """Another live process already serves on the configured socket."""
