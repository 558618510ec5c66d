"""OCI image-spec v1.1.1 models: descriptors, manifests, indexes, image configs, layouts, platforms.

Every model is a frozen, keyword-only dataclass with ``from_json``/``from_dict`` and
``to_json``/``to_dict``/``to_bytes``; unknown JSON keys are kept in ``extra``. Validate a
document against the official schema with :func:`ocispec.schema.validate` (or the
``validate`` method of the models here).

Docker image manifest v2 schema 2 documents decode into the same models (a Docker
manifest list is an :class:`Index`, its config an :class:`ImageConfig`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocispec.image.annotations import Annotation
from ocispec.image.descriptor import Descriptor
from ocispec.image.digest import Digest
from ocispec.image.layout import (
    BLOBS_DIR,
    IMAGE_LAYOUT_VERSION,
    INDEX_FILE,
    LAYOUT_FILE,
    ImageLayout,
    blob_path,
)
from ocispec.image.manifest import Index, Manifest
from ocispec.image.mediatype import (
    MediaType,
    is_config,
    is_docker,
    is_index,
    is_layer,
    is_manifest,
    layer_compression,
    oci_equivalent,
)
from ocispec.image.platform import Platform, PlatformMatcher, host_platform

if TYPE_CHECKING:
    from ocispec.image.config import ExecutionConfig, History, ImageConfig, RootFS

#: The image config's models load on first use: each model (a dataclass) costs an
#: importer about a millisecond, and a program that moves images (``ociimage pull``)
#: decodes the config only once its layers are on their way.
_CONFIG_NAMES = frozenset({"ExecutionConfig", "History", "ImageConfig", "RootFS"})

__all__ = [
    "BLOBS_DIR",
    "IMAGE_LAYOUT_VERSION",
    "INDEX_FILE",
    "LAYOUT_FILE",
    "Annotation",
    "Descriptor",
    "Digest",
    "ExecutionConfig",
    "History",
    "ImageConfig",
    "ImageLayout",
    "Index",
    "Manifest",
    "MediaType",
    "Platform",
    "PlatformMatcher",
    "RootFS",
    "blob_path",
    "host_platform",
    "is_config",
    "is_docker",
    "is_index",
    "is_layer",
    "is_manifest",
    "layer_compression",
    "oci_equivalent",
]


def __getattr__(name: str) -> Any:
    if name in _CONFIG_NAMES:
        from ocispec.image import config

        return getattr(config, name)
    raise AttributeError(f"module 'ocispec.image' has no attribute {name!r}")
