"""ocispec: OCI runtime-spec and image-spec models, validation and config generation.

Sub-packages and modules, each with its own ``__all__``:

* :mod:`ocispec.image` -- image-spec v1.1.1 models (``Descriptor``, ``Manifest``, ``Index``,
  ``ImageConfig``, ``Platform``, ``MediaType``...), platform matching, OCI layout names;
* :mod:`ocispec.runtime` -- runtime-spec v1.3.0 models (``Spec`` and its parts), the
  container ``State`` and the runtime ``Features`` (``runc features``) with a parser;
* :mod:`ocispec.schema` -- validation against the official JSON schemas;
* :mod:`ocispec.generate` -- a builder producing complete Linux container configs;
* :mod:`ocispec.errors` -- the exceptions, all deriving from :class:`SpecError`;
* :mod:`ocispec.testing` -- hypothesis strategies for the models (needs hypothesis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocispec._model import FrozenDict, JSONModel
from ocispec.errors import (
    DecodeError,
    GenerateError,
    InvalidArgumentError,
    InvalidDigestError,
    PlatformError,
    RunAsNonRootError,
    SchemaValidationError,
    SeccompProfileError,
    SpecError,
    SysctlError,
    UserResolutionError,
)

if TYPE_CHECKING:
    from ocispec._violation import SchemaViolation
    from ocispec.schema import Schema, validate, validate_media_type, violations

#: Loaded on first use: programs that only read models (a pull) never pay for them.
_SCHEMA_NAMES = frozenset({"Schema", "validate", "validate_media_type", "violations"})

__version__ = "0.1.0"

__all__ = [
    "DecodeError",
    "FrozenDict",
    "GenerateError",
    "InvalidArgumentError",
    "InvalidDigestError",
    "JSONModel",
    "PlatformError",
    "RunAsNonRootError",
    "Schema",
    "SchemaValidationError",
    "SchemaViolation",
    "SeccompProfileError",
    "SpecError",
    "SysctlError",
    "UserResolutionError",
    "__version__",
    "validate",
    "validate_media_type",
    "violations",
]


def __getattr__(name: str) -> Any:
    if name == "SchemaViolation":
        from ocispec._violation import SchemaViolation

        return SchemaViolation
    if name in _SCHEMA_NAMES:
        from ocispec import schema

        return getattr(schema, name)
    raise AttributeError(f"module 'ocispec' has no attribute {name!r}")
