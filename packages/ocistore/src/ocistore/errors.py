"""Exceptions raised by ocistore.

Every error ocistore raises derives from :class:`StoreError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = ["StoreError"]


class StoreError(Exception):
    """Base class of every error raised by ocistore."""
