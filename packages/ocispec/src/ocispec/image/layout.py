"""The OCI image layout (image-spec v1.1.1): ``oci-layout``, ``index.json``, ``blobs/``."""

from __future__ import annotations

from pathlib import Path

from ocispec._model import JSONModel, jfield, model
from ocispec.image.digest import Digest

__all__ = [
    "BLOBS_DIR",
    "IMAGE_LAYOUT_VERSION",
    "INDEX_FILE",
    "LAYOUT_FILE",
    "ImageLayout",
    "blob_path",
]

#: Name of the layout marker file at the layout's root.
LAYOUT_FILE = "oci-layout"
#: Name of the entry-point index at the layout's root (an :class:`ocispec.image.Index`).
INDEX_FILE = "index.json"
#: Directory holding the blobs, as ``blobs/<algorithm>/<encoded>``.
BLOBS_DIR = "blobs"
#: The layout version this library writes and reads.
IMAGE_LAYOUT_VERSION = "1.0.0"


@model
class ImageLayout(JSONModel):
    """Contents of the ``oci-layout`` file."""

    image_layout_version: str = jfield(
        "imageLayoutVersion", omitempty=False, default=IMAGE_LAYOUT_VERSION
    )


def blob_path(root: str | Path, digest: str) -> Path:
    """Where the blob ``digest`` lives in the layout at ``root``; the digest is validated first."""
    d = Digest(digest)
    return Path(root) / BLOBS_DIR / d.algorithm / d.encoded
