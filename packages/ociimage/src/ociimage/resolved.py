"""An image found in a registry, before any of its layers is downloaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ociimage.client import FetchedManifest
from ociimage.reference import Reference
from ociimage.registries import PullSource
from ocispec.image import Descriptor, Manifest, Platform

if TYPE_CHECKING:
    from ocispec.image import ImageConfig

__all__ = ["LocatedImage", "ResolvedImage"]


# Plain classes, not dataclasses: a dataclass costs an importer about a millisecond (it
# compiles its methods), and the ``ociimage pull`` command imports this module.


class LocatedImage:
    """An image found in a registry: its manifest resolved (the platform's, through an
    index), so every blob's digest is known; nothing else fetched yet.

    A pull locates the image, evaluates the policy, then downloads the config and the
    layers together; :class:`ResolvedImage` adds the config, for those who want it first.
    """

    def __init__(
        self,
        *,
        reference: Reference,
        source: PullSource,
        top: FetchedManifest,
        manifest: FetchedManifest,
        image_manifest: Manifest,
        platforms: tuple[Platform, ...] = (),
    ) -> None:
        self.reference = reference
        self.source = source
        self.top = top
        self.manifest = manifest
        self.image_manifest = image_manifest
        self.platforms = platforms

    def __repr__(self) -> str:
        return f"LocatedImage(reference={self.reference!r}, digest={self.digest!r})"

    @property
    def index(self) -> Descriptor | None:
        """The index's descriptor when the reference resolved through one."""
        return self.top.descriptor if self.top.is_index else None

    @property
    def digest(self) -> str:
        """The repo digest: of the index when there is one, else of the manifest."""
        return self.top.digest

    @property
    def signed_digest(self) -> str:
        """The digest signatures must name: the platform manifest's, even through an index.

        As in containers/image, the policy is evaluated against the manifest that is
        pulled (the chosen instance), not against the index it was found through.
        """
        return self.manifest.digest

    @property
    def repo_digest(self) -> str:
        """``repo@sha256:...`` under the logical name."""
        return self.reference.repo_digest(self.digest)

    @property
    def names(self) -> list[str]:
        """The names to record the image under: the tagged reference, none for a digest."""
        return [] if self.reference.digest else [str(self.reference.with_default_tag())]


class ResolvedImage(LocatedImage):
    """An image found in a registry: its manifest and config, no layers downloaded yet."""

    def __init__(
        self,
        *,
        reference: Reference,
        source: PullSource,
        top: FetchedManifest,
        manifest: FetchedManifest,
        image_manifest: Manifest,
        config_data: bytes,
        config: ImageConfig,
        platforms: tuple[Platform, ...] = (),
    ) -> None:
        super().__init__(
            reference=reference,
            source=source,
            top=top,
            manifest=manifest,
            image_manifest=image_manifest,
            platforms=platforms,
        )
        self.config_data = config_data
        self.config = config

    def __repr__(self) -> str:
        return f"ResolvedImage(reference={self.reference!r}, digest={self.digest!r})"
