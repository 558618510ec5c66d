"""What crid reports about a stored image, independent of the CRI's protobuf types.

``ImageRecord`` joins ocistore's image (id, names, digests, size) with what the image
config says about the user and whether the node keeps the image pinned.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from ociimage.errors import ImageError
from ociimage.reference import parse_reference
from ocispec.image import ImageConfig
from ocistore import Image

__all__ = ["ImageRecord", "PinRule", "image_user", "make_record"]


@dataclass(frozen=True, kw_only=True)
class ImageRecord:
    """One image as the image service reports it.

    ``uid`` is set when the config's ``User`` is numeric (or empty: root), ``username``
    when it is a name; never both, as the CRI asks.
    """

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    uid: int | None
    username: str
    pinned: bool
    image: Image
    config: ImageConfig


def image_user(user: str) -> tuple[int | None, str]:
    """(uid, username) of an image config's ``User`` (``uid``, ``name``, ``x:group``).

    An image without a user runs as root, so it reports uid 0 (as CRI-O does): the
    kubelet's runAsNonRoot check must see that.
    """
    name = user.split(":", 1)[0]
    if not name:
        return 0, ""
    if name.isdigit():
        return int(name), ""
    return None, name


def _normalized(name: str) -> str:
    try:
        return str(parse_reference(name).with_default_tag())
    except ImageError:
        return name


@dataclass(frozen=True, kw_only=True)
class PinRule:
    """Which images are pinned: the pause image, and exact names or globs."""

    patterns: tuple[str, ...]

    @classmethod
    def from_config(cls, pause_image: str, pinned_images: Sequence[str]) -> PinRule:
        """Names are normalised (``busybox`` → ``docker.io/library/busybox:latest``)."""
        patterns = [_normalized(pause_image)] if pause_image else []
        for pattern in pinned_images:
            patterns.append(pattern if any(c in pattern for c in "*?[") else _normalized(pattern))
        return cls(patterns=tuple(patterns))

    def matches(self, image: Image) -> bool:
        """Whether any of the image's tags, repo digests or its id matches a pattern."""
        names = (*image.names, *image.repo_digests, image.id)
        return any(
            fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns for name in names
        )


def make_record(image: Image, config: ImageConfig, pins: PinRule) -> ImageRecord:
    """The record of ``image`` whose config is ``config``."""
    uid, username = image_user(config.config.user)
    return ImageRecord(
        id=image.id,
        repo_tags=image.names,
        repo_digests=image.repo_digests,
        size=image.size,
        uid=uid,
        username=username,
        pinned=pins.matches(image),
        image=image,
        config=config,
    )
