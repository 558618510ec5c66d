"""ocistore: content store, layered overlay storage, images and container root filesystems.

Open a :class:`Store` on a directory; ociimage pulls into ``store.pull_sink()``; crid
creates, mounts and removes container root filesystems and image volumes from the
stored images.
"""

from __future__ import annotations

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
from ocistore.unpack import IDMapping, UnpackLimits, UnpackOptions, UnpackResult, unpack_layer
from ocistore.usage import StoreUsage, Usage
from ocistore.volumes import ImageVolume

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
