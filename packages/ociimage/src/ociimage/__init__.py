"""ociimage: image references, registry client, auth and signature policy."""

from __future__ import annotations

from ociimage.errors import ImageError

__version__ = "0.1.0"

__all__ = ["ImageError", "__version__"]
