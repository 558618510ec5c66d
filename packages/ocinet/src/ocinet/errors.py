"""Exceptions raised by ocinet.

Every error ocinet raises derives from :class:`NetError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CNIError",
    "ConfigError",
    "NamespaceError",
    "NetError",
    "NetworkNotFoundError",
    "NetworkNotReadyError",
    "PluginNotFoundError",
    "PluginTimeoutError",
    "ResultError",
]


class NetError(Exception):
    """Base class of every error raised by ocinet (CNI plugin invocation and pinned namespaces)."""


class ConfigError(NetError):
    """A CNI network configuration file or object is malformed or fails validation."""


class NetworkNotFoundError(NetError):
    """The network asked for by name is not among the loaded configurations."""


class NetworkNotReadyError(NetError):
    """No usable network configuration is loaded yet; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ResultError(NetError):
    """A plugin result (or a cached one) cannot be parsed or converted to the wanted version."""


class CNIError(NetError):
    """A CNI plugin failed.

    Carries the spec's error fields: ``code`` (well-known codes are below 100; 0 when the
    plugin printed no error object), ``msg`` and ``details``, plus which ``plugin`` failed,
    for which ``command``, and whatever it wrote to ``stderr``.
    """

    def __init__(
        self,
        code: int,
        msg: str,
        details: str = "",
        *,
        plugin: str = "",
        command: str = "",
        stderr: str = "",
    ) -> None:
        text = msg
        if details:
            text = f"{msg}; {details}"
        if plugin or command:
            text = f"plugin {plugin or '?'} failed ({command or '?'}): {text}"
        if code:
            text = f"{text} (code {code})"
        super().__init__(text)
        self.code = code
        self.msg = msg
        self.details = details
        self.plugin = plugin
        self.command = command
        self.stderr = stderr

    def to_json(self, cni_version: str = "1.1.0") -> dict[str, Any]:
        """The error as the spec's error object, e.g. to relay it to a caller."""
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


class PluginNotFoundError(CNIError):
    """The plugin binary named by a configuration's ``type`` is in none of the plugin dirs."""


class PluginTimeoutError(CNIError):
    """A plugin did not finish within its timeout; it was killed and reaped."""


class NamespaceError(NetError):
    """Creating, entering, removing a pinned namespace, or running a command inside it failed."""
