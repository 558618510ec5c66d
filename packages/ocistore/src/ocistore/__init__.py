"""ocistore: content store, layered overlay storage, images and container root filesystems.

Open a :class:`Store` on a directory; ociimage pulls into ``store.pull_sink()``; crid
creates, mounts and removes container root filesystems and image volumes from the
stored images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocistore._unpack_types import IDMapping, UnpackLimits, UnpackOptions, UnpackResult
from ocistore.aio import AsyncStore
from ocistore.blobs import BlobWriter
from ocistore.check import StoreCheck, check_store
from ocistore.containers import Container
from ocistore.errors import (
    AmbiguousImageError,
    BlobNotFoundError,
    ContainerExistsError,
    ContainerNotFoundError,
    DiffIDMismatchError,
    DigestMismatchError,
    ImageInUseError,
    ImageNotFoundError,
    LayerError,
    LayerLimitError,
    LayoutError,
    MountError,
    StoreError,
    StoreLockedError,
    SubPathError,
    SubPathNotFoundError,
    UnsafeLayerError,
    UnsupportedMediaTypeError,
)
from ocistore.images import Image
from ocistore.layers import Layer, chain_ids
from ocistore.repair import RepairReport
from ocistore.sink import StorePullSink
from ocistore.store import Store
from ocistore.usage import StoreUsage, Usage
from ocistore.volumes import ImageVolume

if TYPE_CHECKING:
    from ocistore.unpack import unpack_layer

__version__ = "0.1.0"

__all__ = [
    "AmbiguousImageError",
    "AsyncStore",
    "BlobNotFoundError",
    "BlobWriter",
    "Container",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "DiffIDMismatchError",
    "DigestMismatchError",
    "IDMapping",
    "Image",
    "ImageInUseError",
    "ImageNotFoundError",
    "ImageVolume",
    "Layer",
    "LayerError",
    "LayerLimitError",
    "LayoutError",
    "MountError",
    "RepairReport",
    "Store",
    "StoreCheck",
    "StoreError",
    "StoreLockedError",
    "StorePullSink",
    "StoreUsage",
    "SubPathError",
    "SubPathNotFoundError",
    "UnpackLimits",
    "UnpackOptions",
    "UnpackResult",
    "UnsafeLayerError",
    "UnsupportedMediaTypeError",
    "Usage",
    "__version__",
    "chain_ids",
    "check_store",
    "unpack_layer",
]


def __getattr__(name: str) -> object:
    # The unpacker (its tar reader, zstandard, gzip) loads with its first use, not the store.
    if name == "unpack_layer":
        from ocistore.unpack import unpack_layer

        return unpack_layer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
