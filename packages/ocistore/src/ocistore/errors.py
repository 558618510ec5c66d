"""Exceptions raised by ocistore.

Every error ocistore raises derives from :class:`StoreError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousImageError",
    "BlobNotFoundError",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "DatabaseCorruptError",
    "DiffIDMismatchError",
    "DigestMismatchError",
    "ImageInUseError",
    "ImageNotFoundError",
    "LayerError",
    "LayerLimitError",
    "LayoutError",
    "MountError",
    "StoreError",
    "StoreLockedError",
    "SubPathError",
    "SubPathNotFoundError",
    "UnsafeLayerError",
    "UnsupportedMediaTypeError",
]


class StoreError(Exception):
    """Base class of every error raised by ocistore."""


class StoreLockedError(StoreError):
    """Another process holds the store directory's lock and did not release it in time."""


class BlobNotFoundError(StoreError, KeyError):
    """No blob with the asked digest is stored."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "blob not found"


class DigestMismatchError(StoreError):
    """Content written for a descriptor does not have the descriptor's digest or size."""


class LayerError(StoreError):
    """A layer could not be unpacked; nothing of it was kept."""


class UnsupportedMediaTypeError(LayerError):
    """The layer's media type is not a tar, gzip or zstd layer this store can unpack."""


class DiffIDMismatchError(LayerError):
    """The uncompressed layer's digest differs from the diff_id the image config lists."""


class UnsafeLayerError(LayerError):
    """A layer entry tried to reach outside the layer's directory (``..``, symlinks, links)."""


class LayerLimitError(LayerError):
    """A layer exceeded the size or entry-count limits (a decompression bomb, probably)."""


class ImageNotFoundError(StoreError, KeyError):
    """No image matches the given id, id prefix, name or digest."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "image not found"


class AmbiguousImageError(StoreError):
    """An id prefix matches more than one image."""


class ImageInUseError(StoreError):
    """The image cannot be removed: a container's root filesystem or image volume uses it."""


class ContainerNotFoundError(StoreError, KeyError):
    """No container root filesystem with that id exists."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "container not found"


class ContainerExistsError(StoreError):
    """A container root filesystem with that id exists already."""


class MountError(StoreError):
    """Mounting or unmounting a container root filesystem failed."""


class DatabaseCorruptError(StoreError):
    """The store's metadata database (``store.db``) is damaged or not a database; the
    store refuses to open rather than serve images and layers it no longer knows."""


class LayoutError(StoreError):
    """An OCI image layout directory is malformed or lacks the asked image."""


class SubPathError(StoreError):
    """An image volume's sub path is malformed or leads outside the image (``..``, links)."""


class SubPathNotFoundError(SubPathError, KeyError):
    """An image volume's sub path does not exist in the image."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "sub path not found"
