"""The signature requirements of ``policy.json``: ``sigstoreSigned``, ``signedBy``, their
``signedIdentity`` rules, and the requirement types ociimage does not know.

Apart from :mod:`ociimage.policy` (which re-exports them) so that a policy without
signatures (``insecureAcceptAnything``, ``reject``) never builds these classes: each
dataclass costs an importer about a millisecond.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ociimage.errors import InvalidReferenceError
from ociimage.policy import Requirement
from ociimage.reference import Reference, parse_reference

if TYPE_CHECKING:  # fulcio imports cryptography: only policies with sigstoreSigned need it
    from ociimage.fulcio import FulcioTrust

__all__ = ["SignedBy", "SignedIdentity", "SigstoreSigned", "UnknownRequirement"]


@dataclass(frozen=True, kw_only=True)
class SignedIdentity:
    """How a signature's claimed identity must relate to the image's reference."""

    type: str = "matchRepoDigestOrExact"
    docker_reference: str = ""
    docker_repository: str = ""
    prefix: str = ""
    signed_prefix: str = ""

    def matches(self, image: Reference, signed: str) -> bool:
        """Whether a signature claiming ``signed`` may stand for the image ``image``."""
        try:
            claimed = parse_reference(signed)
        except InvalidReferenceError:
            return False
        if self.type == "matchExact":
            return bool(image.tag) and not image.digest and str(claimed) == str(image)
        if self.type == "matchRepository":
            return claimed.name == image.name
        if self.type == "exactReference":
            return str(claimed) == str(parse_reference(self.docker_reference))
        if self.type == "exactRepository":
            return claimed.name == parse_reference(self.docker_repository).name
        if self.type == "remapIdentity":
            text = str(image)
            if _prefix_matches(text, self.prefix):
                image = parse_reference(self.signed_prefix + text[len(self.prefix) :])
            return _repo_digest_or_exact(image, claimed)
        return _repo_digest_or_exact(image, claimed)


def _repo_digest_or_exact(image: Reference, claimed: Reference) -> bool:
    if image.digest:
        return claimed.name == image.name
    return str(claimed) == str(image.with_default_tag())


def _prefix_matches(text: str, prefix: str) -> bool:
    return text == prefix or (text.startswith(prefix) and text[len(prefix)] in "/:@")


@dataclass(frozen=True, kw_only=True)
class SigstoreSigned(Requirement):
    """``sigstoreSigned``: public keys (PEM), or keyless with a ``fulcio`` CA and identity.

    ``rekor_keys`` (PEM) are set when the policy names Rekor keys (always with
    ``fulcio``): signatures must then carry a Rekor SET that verifies with one of them.
    ``pki`` (X.509 CA keys) is kept as written; it is not supported, so it rejects.
    """

    keys: tuple[bytes, ...] = ()
    fulcio: FulcioTrust | None = None
    rekor_keys: tuple[bytes, ...] = ()
    pki: Mapping[str, Any] | None = None
    signed_identity: SignedIdentity = field(default_factory=SignedIdentity)

    @property
    def name(self) -> str:
        return "sigstoreSigned"


@dataclass(frozen=True, kw_only=True)
class SignedBy(Requirement):
    """``signedBy`` (OpenPGP simple signing) with its GPG keyring data."""

    key_type: str = "GPGKeys"
    keys: tuple[bytes, ...] = ()
    signed_identity: SignedIdentity = field(default_factory=SignedIdentity)

    @property
    def name(self) -> str:
        return "signedBy"


@dataclass(frozen=True, kw_only=True)
class UnknownRequirement(Requirement):
    """A requirement type ociimage does not implement: it always rejects."""

    type: str
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.type
