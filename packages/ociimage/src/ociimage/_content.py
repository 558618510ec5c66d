"""Content checks shared by the registry client: digests, sizes, manifest media types."""

from __future__ import annotations

import hashlib
import json

from ociimage.errors import DigestMismatchError, SizeMismatchError, UnsupportedManifestError
from ociimage.sink import BlobWriter
from ocispec.image import Descriptor, Digest, MediaType, is_index, is_manifest

__all__ = ["absorb", "error_code", "sniff_media_type", "verify_content"]

_SCHEMA1 = (MediaType.DOCKER_SCHEMA1_MANIFEST, MediaType.DOCKER_SCHEMA1_SIGNED_MANIFEST)


def absorb(writer: BlobWriter, hasher: hashlib._Hash | None, parts: list[bytes]) -> None:
    """Hash and write a batch of chunks (in a worker thread: hashlib releases the GIL)."""
    data = b"".join(parts)
    if hasher is not None:
        hasher.update(data)
    writer.write(data)


def verify_content(data: bytes, descriptor: Descriptor, where: str) -> None:
    """Raise unless ``data`` has the descriptor's size and digest."""
    if len(data) != descriptor.size:
        raise SizeMismatchError(
            f"{where}: {descriptor.digest} has {len(data)} bytes, descriptor says {descriptor.size}"
        )
    if not Digest(descriptor.digest).verify(data):
        raise DigestMismatchError(f"{where}: content does not hash to {descriptor.digest}")


def sniff_media_type(header: str, data: bytes, where: str) -> str:
    """The manifest's media type: the body's ``mediaType`` wins over the header."""
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise UnsupportedManifestError(f"{where}: manifest is not JSON") from err
    if not isinstance(doc, dict):
        raise UnsupportedManifestError(f"{where}: manifest is not a JSON object")
    body_type = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else ""
    if doc.get("schemaVersion") == 1 or header in _SCHEMA1 or body_type in _SCHEMA1:
        raise UnsupportedManifestError(
            f"{where}: Docker image manifest schema 1 is deprecated and not supported; "
            "re-push the image with a current client"
        )
    media_type = body_type or header
    if not media_type:
        media_type = MediaType.IMAGE_INDEX if "manifests" in doc else MediaType.IMAGE_MANIFEST
    if not (is_manifest(media_type) or is_index(media_type)):
        raise UnsupportedManifestError(f"{where}: unsupported manifest media type {media_type!r}")
    return media_type


def error_code(body: bytes) -> str:
    """The first distribution error code (``MANIFEST_UNKNOWN``...) in an error body."""
    try:
        errors = json.loads(body).get("errors") or []
        return str(errors[0].get("code", "")) if errors else ""
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
