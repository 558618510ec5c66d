"""Images for the CRI image service: ociimage pulls into ocistore, joined here.

:class:`ImageCatalog` lists, inspects, pulls and removes images; it is what
``crid.services.image`` calls. Nothing here knows the CRI's protobuf types.
"""

from __future__ import annotations

from crid.images.catalog import ImageCatalog, verbose_info
from crid.images.lookup import candidate_names, find_image
from crid.images.pull import ImagePuller, PullOutcome, load_registries
from crid.images.record import ImageRecord, PinRule, image_user
from crid.images.usage import FilesystemUsage, StorageUsage, storage_usage

__all__ = [
    "FilesystemUsage",
    "ImageCatalog",
    "ImagePuller",
    "ImageRecord",
    "PinRule",
    "PullOutcome",
    "StorageUsage",
    "candidate_names",
    "find_image",
    "image_user",
    "load_registries",
    "storage_usage",
    "verbose_info",
]
