"""Image manifests and image indexes (image-spec v1.1.1), also Docker schema 2 ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ocispec._model import FrozenDict, JSONModel, jfield, model
from ocispec.image.descriptor import Descriptor
from ocispec.image.platform import Platform, PlatformMatcher

__all__ = ["Index", "Manifest"]


@model
class Manifest(JSONModel):
    """An image manifest: a config blob and the layers, bottom first.

    ``media_type`` is written only when set; OCI recommends setting it
    (``MediaType.IMAGE_MANIFEST``) and Docker schema 2 requires it.
    """

    schema_version: int = jfield("schemaVersion", omitempty=False, default=2)
    media_type: str = jfield("mediaType", default="")
    artifact_type: str = jfield("artifactType", default="")
    config: Descriptor = jfield("config", omitempty=False)
    layers: Sequence[Descriptor] = jfield("layers", omitempty=False, default=())
    subject: Descriptor | None = jfield("subject", default=None)
    annotations: Mapping[str, str] = jfield("annotations", default_factory=FrozenDict)


@model
class Index(JSONModel):
    """An image index (or Docker manifest list): manifests for several platforms."""

    schema_version: int = jfield("schemaVersion", omitempty=False, default=2)
    media_type: str = jfield("mediaType", default="")
    artifact_type: str = jfield("artifactType", default="")
    manifests: Sequence[Descriptor] = jfield("manifests", omitempty=False, default=())
    subject: Descriptor | None = jfield("subject", default=None)
    annotations: Mapping[str, str] = jfield("annotations", default_factory=FrozenDict)

    def select(self, platform: Platform | str | PlatformMatcher) -> list[Descriptor]:
        """The entries runnable on ``platform``, best first.

        Entries without a platform are skipped.
        """
        matcher = platform if isinstance(platform, PlatformMatcher) else PlatformMatcher(platform)
        return matcher.select(self.manifests)
