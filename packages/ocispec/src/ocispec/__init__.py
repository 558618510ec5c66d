"""ocispec: OCI runtime-spec and image-spec models, validation and config generation."""

from __future__ import annotations

from ocispec.errors import SpecError

__version__ = "0.1.0"

__all__ = ["SpecError", "__version__"]
