"""What a pull reports: progress events while it runs, and :class:`PullResult` at the end.

Kept apart from :mod:`ociimage.pull` (and re-exported there) so that a progress display
or a caller that only inspects results needs none of the puller's machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from ocispec.image import Descriptor

if TYPE_CHECKING:
    from ociimage.resolved import ResolvedImage
    from ociimage.trust import PolicyDecision
    from ocispec.image import ImageConfig

__all__ = ["ProgressCallback", "ProgressEvent", "ProgressKind", "PullResult"]


class ProgressKind(StrEnum):
    """What a :class:`ProgressEvent` reports."""

    START = "start"
    PROGRESS = "progress"
    DONE = "done"
    EXISTS = "exists"


# ProgressEvent and PullResult are plain classes: a dataclass costs an importer about a
# millisecond (it compiles its methods), and the ``ociimage pull`` command imports this.


class ProgressEvent:
    """Progress of one blob: ``done`` bytes of ``descriptor.size`` so far."""

    __slots__ = ("descriptor", "done", "kind")

    def __init__(self, *, kind: ProgressKind, descriptor: Descriptor, done: int = 0) -> None:
        self.kind = kind
        self.descriptor = descriptor
        self.done = done

    def __repr__(self) -> str:
        return (
            f"ProgressEvent(kind={self.kind!r}, descriptor={self.descriptor!r}, done={self.done})"
        )


ProgressCallback = Callable[[ProgressEvent], None]


class PullResult:
    """What a pull stored."""

    __slots__ = ("downloaded_bytes", "image", "policy", "skipped_blobs")

    def __init__(
        self,
        *,
        image: ResolvedImage,
        policy: PolicyDecision | None = None,
        downloaded_bytes: int = 0,
        skipped_blobs: tuple[str, ...] = (),
    ) -> None:
        self.image = image
        self.policy = policy
        self.downloaded_bytes = downloaded_bytes
        self.skipped_blobs = skipped_blobs

    def __repr__(self) -> str:
        return (
            f"PullResult(image={self.image!r}, policy={self.policy!r}, "
            f"downloaded_bytes={self.downloaded_bytes}, skipped_blobs={self.skipped_blobs!r})"
        )

    @property
    def manifest(self) -> Descriptor:
        """The platform-specific manifest's descriptor."""
        return self.image.manifest.descriptor

    @property
    def index(self) -> Descriptor | None:
        return self.image.index

    @property
    def config(self) -> ImageConfig:
        return self.image.config

    @property
    def repo_digest(self) -> str:
        return self.image.repo_digest

    @property
    def names(self) -> list[str]:
        return self.image.names
