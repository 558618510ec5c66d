"""Exceptions raised by crid.

Every error crid raises derives from :class:`CridError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = ["CridError"]


class CridError(Exception):
    """Base class of every error raised by crid (the CRI runtime daemon)."""
