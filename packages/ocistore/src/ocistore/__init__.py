"""ocistore: content store, layered overlay storage, images and container root filesystems."""

from __future__ import annotations

from ocistore.errors import StoreError

__version__ = "0.1.0"

__all__ = ["StoreError", "__version__"]
