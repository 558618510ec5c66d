"""The CRI gRPC services: each RPC handler reads the request, makes one call, answers."""

from __future__ import annotations

from crid.services.image import ImageService
from crid.services.runtime import RuntimeService

__all__ = ["ImageService", "RuntimeService"]
