"""Media types of the OCI image-spec v1.1.1 and their Docker (manifest v2 schema 2) equivalents."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "MediaType",
    "is_config",
    "is_docker",
    "is_index",
    "is_layer",
    "is_manifest",
    "layer_compression",
    "oci_equivalent",
]


class MediaType(StrEnum):
    """Well-known media types. Members are ``str``; any other media type is a plain ``str``."""

    # OCI image-spec v1.1.1
    DESCRIPTOR = "application/vnd.oci.descriptor.v1+json"
    LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"
    IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
    IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
    IMAGE_LAYER = "application/vnd.oci.image.layer.v1.tar"
    IMAGE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    IMAGE_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    IMAGE_LAYER_ENCRYPTED = "application/vnd.oci.image.layer.v1.tar+encrypted"
    IMAGE_LAYER_GZIP_ENCRYPTED = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
    IMAGE_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    IMAGE_LAYER_NONDISTRIBUTABLE_GZIP = (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    )
    IMAGE_LAYER_NONDISTRIBUTABLE_ZSTD = (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
    )
    EMPTY_JSON = "application/vnd.oci.empty.v1+json"

    # Docker image manifest v2, schema 2 (and the legacy schema 1 names, for recognition only)
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
    DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"
    DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"
    DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
    DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"


_MANIFESTS = frozenset({MediaType.IMAGE_MANIFEST, MediaType.DOCKER_MANIFEST})
_INDEXES = frozenset({MediaType.IMAGE_INDEX, MediaType.DOCKER_MANIFEST_LIST})
_CONFIGS = frozenset({MediaType.IMAGE_CONFIG, MediaType.DOCKER_CONFIG})

_OCI_EQUIVALENT: dict[str, MediaType] = {
    MediaType.DOCKER_MANIFEST: MediaType.IMAGE_MANIFEST,
    MediaType.DOCKER_MANIFEST_LIST: MediaType.IMAGE_INDEX,
    MediaType.DOCKER_CONFIG: MediaType.IMAGE_CONFIG,
    MediaType.DOCKER_LAYER: MediaType.IMAGE_LAYER,
    MediaType.DOCKER_LAYER_GZIP: MediaType.IMAGE_LAYER_GZIP,
    MediaType.DOCKER_LAYER_ZSTD: MediaType.IMAGE_LAYER_ZSTD,
    MediaType.DOCKER_FOREIGN_LAYER: MediaType.IMAGE_LAYER_NONDISTRIBUTABLE,
    MediaType.DOCKER_FOREIGN_LAYER_GZIP: MediaType.IMAGE_LAYER_NONDISTRIBUTABLE_GZIP,
}


def _base(media_type: str) -> str:
    """The media type without parameters (``; charset=...``), lower-cased."""
    return media_type.split(";", 1)[0].strip().lower()


def is_manifest(media_type: str) -> bool:
    """An image manifest, OCI or Docker schema 2."""
    return _base(media_type) in _MANIFESTS


def is_index(media_type: str) -> bool:
    """An image index, OCI or Docker manifest list."""
    return _base(media_type) in _INDEXES


def is_config(media_type: str) -> bool:
    """An image configuration, OCI or Docker."""
    return _base(media_type) in _CONFIGS


def is_docker(media_type: str) -> bool:
    """One of Docker's ``application/vnd.docker.*`` media types."""
    return _base(media_type).startswith("application/vnd.docker.")


def is_layer(media_type: str) -> bool:
    """A filesystem layer (tar, compressed or not, distributable or not, OCI or Docker)."""
    mt = _base(media_type)
    return mt.startswith(
        (
            "application/vnd.oci.image.layer.",
            "application/vnd.docker.image.rootfs.diff.tar",
            "application/vnd.docker.image.rootfs.foreign.diff.tar",
        )
    )


def layer_compression(media_type: str) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` (uncompressed tar) for a layer media type.

    Raises :class:`ValueError` for a media type that is not a layer, or an encrypted one.
    """
    mt = _base(media_type)
    if not is_layer(mt):
        raise ValueError(f"not a layer media type: {media_type!r}")
    if mt.endswith("+encrypted"):
        raise ValueError(f"encrypted layers are not supported: {media_type!r}")
    if mt.endswith(("+gzip", ".tar.gzip")):
        return "gzip"
    if mt.endswith(("+zstd", ".tar.zstd")):
        return "zstd"
    return None


def oci_equivalent(media_type: str) -> str:
    """The OCI media type for a Docker one; any other media type is returned unchanged."""
    return _OCI_EQUIVALENT.get(_base(media_type), media_type)
