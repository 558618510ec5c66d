"""Exceptions raised by ociimage.

Every error ociimage raises derives from :class:`ImageError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = ["ImageError"]


class ImageError(Exception):
    """Base class of every error raised by ociimage."""
