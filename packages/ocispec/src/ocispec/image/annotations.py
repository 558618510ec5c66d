"""Pre-defined annotation keys of the OCI image-spec v1.1.1."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Annotation"]


class Annotation(StrEnum):
    """Annotation keys defined by the image-spec (``org.opencontainers.image.*``)."""

    CREATED = "org.opencontainers.image.created"
    AUTHORS = "org.opencontainers.image.authors"
    URL = "org.opencontainers.image.url"
    DOCUMENTATION = "org.opencontainers.image.documentation"
    SOURCE = "org.opencontainers.image.source"
    VERSION = "org.opencontainers.image.version"
    REVISION = "org.opencontainers.image.revision"
    VENDOR = "org.opencontainers.image.vendor"
    LICENSES = "org.opencontainers.image.licenses"
    REF_NAME = "org.opencontainers.image.ref.name"
    TITLE = "org.opencontainers.image.title"
    DESCRIPTION = "org.opencontainers.image.description"
    BASE_IMAGE_DIGEST = "org.opencontainers.image.base.digest"
    BASE_IMAGE_NAME = "org.opencontainers.image.base.name"
    #: containerd's annotation naming the full image reference in an OCI layout's index.
    CONTAINERD_IMAGE_NAME = "io.containerd.image.name"
