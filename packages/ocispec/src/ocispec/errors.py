"""Exceptions raised by ocispec.

Every error ocispec raises derives from :class:`SpecError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = ["SpecError"]


class SpecError(Exception):
    """Base class of every error raised by ocispec."""
