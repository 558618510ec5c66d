"""Content descriptors (image-spec v1.1.1 ``descriptor.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ocispec._model import FrozenDict, JSONModel, jfield, model
from ocispec.image.digest import Digest
from ocispec.image.platform import Platform

__all__ = ["Descriptor"]


@model
class Descriptor(JSONModel):
    """A reference to content by media type, digest and size.

    ``platform`` is set for index entries that point to manifests; ``data`` embeds small
    content (written as base64); ``artifact_type`` is the referenced artifact's type.
    """

    media_type: str = jfield("mediaType", omitempty=False)
    digest: str = jfield("digest", omitempty=False)
    size: int = jfield("size", omitempty=False)
    urls: Sequence[str] = jfield("urls", default=())
    annotations: Mapping[str, str] = jfield("annotations", default_factory=FrozenDict)
    data: bytes = jfield("data", default=b"")
    platform: Platform | None = jfield("platform", default=None)
    artifact_type: str = jfield("artifactType", default="")

    @classmethod
    def from_bytes(cls, media_type: str, content: bytes, **fields: object) -> Descriptor:
        """A descriptor for ``content``: its sha256 digest and size filled in."""
        return cls(
            media_type=media_type,
            digest=Digest.from_bytes(content),
            size=len(content),
            **fields,  # type: ignore[arg-type]
        )

    @property
    def parsed_digest(self) -> Digest:
        """``digest`` validated as a :class:`Digest`; raises InvalidDigestError."""
        return Digest(self.digest)
