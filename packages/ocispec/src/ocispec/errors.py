"""Exceptions raised by ocispec.

Every error ocispec raises derives from :class:`SpecError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocispec._violation import SchemaViolation

__all__ = [
    "DecodeError",
    "GenerateError",
    "InvalidArgumentError",
    "InvalidDigestError",
    "PlatformError",
    "RunAsNonRootError",
    "SchemaValidationError",
    "SchemaViolation",
    "SeccompProfileError",
    "SpecError",
    "SysctlError",
    "UserResolutionError",
]


class SpecError(Exception):
    """Base class of every error raised by ocispec.

    That is: OCI runtime-spec and image-spec models, validation and config generation.
    """


class DecodeError(SpecError, ValueError):
    """A JSON document could not be decoded into a model: not JSON, or a field has the wrong type.

    ``path`` is the JSON path of the offending value (``$`` is the document itself).
    """

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class SchemaValidationError(SpecError, ValueError):
    """A document does not validate against its OCI JSON schema.

    ``violations`` lists every broken rule; ``schema`` names the schema.
    """

    def __init__(self, schema: str, violations: Sequence[SchemaViolation]) -> None:
        self.schema = schema
        self.violations = tuple(violations)
        shown = "; ".join(str(v) for v in self.violations[:5])
        more = f" (and {len(self.violations) - 5} more)" if len(self.violations) > 5 else ""
        super().__init__(f"document does not match the {schema} schema: {shown}{more}")


class InvalidDigestError(SpecError, ValueError):
    """A string is not a valid ``algorithm:encoded`` digest, or its algorithm is unsupported."""


class PlatformError(SpecError, ValueError):
    """A platform specifier (``os/arch[/variant]``) cannot be parsed."""


class GenerateError(SpecError):
    """Base class of the errors raised while generating a runtime config."""


class InvalidArgumentError(GenerateError, ValueError):
    """An input to the config generator is malformed or contradicts another input."""


class UserResolutionError(GenerateError):
    """A user or group cannot be resolved against the container's /etc/passwd or /etc/group."""


class RunAsNonRootError(GenerateError):
    """The container must run as non-root, but its user is root or a name that cannot be checked."""


class SysctlError(GenerateError, ValueError):
    """A sysctl is not namespaced, not allowed for the container's namespaces, or malformed."""


class SeccompProfileError(GenerateError):
    """A seccomp profile cannot be read, parsed or translated."""


def __getattr__(name: str) -> Any:
    if name == "SchemaViolation":  # built on first use: see ocispec._violation
        from ocispec._violation import SchemaViolation

        return SchemaViolation
    raise AttributeError(f"module 'ocispec.errors' has no attribute {name!r}")
