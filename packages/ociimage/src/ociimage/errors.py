"""Exceptions raised by ociimage.

Every error ociimage raises derives from :class:`ImageError`, so callers can catch the
whole package's failures in one clause and crid can map them to gRPC codes.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BlockedRegistryError",
    "ConfigFileError",
    "ContentNotFoundError",
    "DigestMismatchError",
    "ImageError",
    "IntegrityError",
    "InvalidReferenceError",
    "LayoutError",
    "LookasideError",
    "NoMatchingPlatformError",
    "PolicyRejectedError",
    "ProgressTimeoutError",
    "RegistryError",
    "RegistryUnavailableError",
    "ResponseTooLargeError",
    "ShortNameError",
    "SignatureVerificationError",
    "SizeMismatchError",
    "UnsupportedManifestError",
]


class ImageError(Exception):
    """Base class of every error raised by ociimage."""


class InvalidReferenceError(ImageError, ValueError):
    """An image reference does not follow the distribution reference grammar; says why."""


class ConfigFileError(ImageError, ValueError):
    """A configuration file (registries.conf, auth.json, certs.d) is unreadable or malformed.

    ``path`` names the file, when there is one.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class ShortNameError(ImageError):
    """A short name cannot be resolved (no search registries, or ambiguous in enforcing mode)."""


class BlockedRegistryError(ImageError):
    """registries.conf marks the registry (or the reference's prefix) as blocked."""


class RegistryError(ImageError):
    """A registry answered with an error; ``status`` is the HTTP status, ``code`` the
    distribution error code (``MANIFEST_UNKNOWN``...) when the body gave one."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthenticationError(RegistryError):
    """The registry refused our credentials (or we had none and it wants some)."""


class ContentNotFoundError(RegistryError):
    """The manifest, tag or blob asked for does not exist in the repository."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached, or kept failing (5xx, 429) after every retry."""


class ResponseTooLargeError(RegistryError):
    """A body (manifest, config, token, signature, or a decoded Content-Encoding) went
    past its :class:`~ociimage.limits.ResponseLimits` cap; it was cut off, not stored."""


class UnsupportedManifestError(ImageError):
    """A manifest has a media type ociimage cannot pull (Docker schema 1, unknown types)."""


class IntegrityError(ImageError):
    """Content received does not match the descriptor that named it."""


class DigestMismatchError(IntegrityError):
    """Content hashes to another digest than the one asked for."""


class SizeMismatchError(IntegrityError):
    """Content has another length than its descriptor says."""


class NoMatchingPlatformError(ImageError):
    """An image index has no manifest for the platform asked for."""


class ProgressTimeoutError(ImageError):
    """A transfer made no progress for longer than the configured progress timeout."""


class LookasideError(ImageError):
    """A lookaside signature server failed (a missing signature just ends the list)."""


class LayoutError(ImageError):
    """An OCI image layout directory is missing, malformed or lacks what was asked for."""


class PolicyRejectedError(ImageError):
    """The signature policy does not allow the image.

    ``image`` is the reference, ``scope`` the policy scope that matched (``default`` for
    the default), ``requirement`` the requirement type that failed and ``reason`` why.
    """

    def __init__(self, *, image: str, scope: str, requirement: str, reason: str) -> None:
        shown = scope if scope else '"" (the docker transport default)'
        super().__init__(
            f"{image} rejected by signature policy: scope {shown}, requirement "
            f"{requirement}: {reason}"
        )
        self.image = image
        self.scope = scope
        self.requirement = requirement
        self.reason = reason


class SignatureVerificationError(ImageError):
    """A signature, its Fulcio certificate or its Rekor proof failed a check.

    The message names the check; the policy evaluation turns it into a rejection reason,
    so pulls only ever raise :class:`PolicyRejectedError`. (Not in ``__all__`` yet: crid's
    gRPC status map must list every exported error first.)
    """
