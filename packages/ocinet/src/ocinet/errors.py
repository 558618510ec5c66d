"""Exceptions raised by ocinet.

Every error ocinet raises derives from :class:`NetError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = ["NetError"]


class NetError(Exception):
    """Base class of every error raised by ocinet."""
