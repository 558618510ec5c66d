"""Evaluating the signature policy for an image found in a registry, before any layer moves.

:func:`evaluate_policy` applies the requirements of the scope matching the image's
logical reference; every requirement must hold. ``sigstoreSigned`` looks for cosign
signatures (the ``sha256-<hex>.sig`` tag) where the image was found and needs one that
verifies with a trusted key, names the image's digest and satisfies the identity rule.
Requirements that cannot be evaluated here (``signedBy``, keyless ``sigstoreSigned``,
unknown types) reject.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ocispec.errors import SpecError
from ocispec.image import Manifest

from ociimage.client import RegistryClient
from ociimage.errors import ContentNotFoundError, ImageError, PolicyRejectedError
from ociimage.policy import (
    AcceptAnything,
    Policy,
    Reject,
    Requirement,
    SignedBy,
    SigstoreSigned,
)
from ociimage.resolved import ResolvedImage
from ociimage.sigstore import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    load_public_keys,
    parse_payload,
    signature_tag,
    verify_signature,
)

__all__ = ["PolicyDecision", "evaluate_policy"]

log = logging.getLogger(__name__)

_MAX_PAYLOAD = 1 << 20


@dataclass(frozen=True, kw_only=True)
class PolicyDecision:
    """An accepted image: the scope that applied and the requirements that held."""

    image: str
    scope: str
    requirements: tuple[str, ...]
    signatures: int = 0


async def _sigstore(
    client: RegistryClient, image: ResolvedImage, req: SigstoreSigned
) -> tuple[bool, str, int]:
    """(accepted, reason, verified signature count)."""
    if not req.keys:
        return False, "keyless (Fulcio) sigstore verification is not supported", 0
    keys = [k for pem in req.keys for k in load_public_keys(pem, "sigstoreSigned key")]
    repo = image.source.reference.path
    tag = signature_tag(image.digest)
    try:
        fetched = await client.get_manifest(repo, tag)
        manifest = Manifest.from_json(fetched.data)
    except ContentNotFoundError:
        return False, f"no sigstore signatures found (no {tag} in {client.host}/{repo})", 0
    except (SpecError, ImageError) as err:
        return False, f"the signature manifest {tag} is unusable: {err}", 0
    reasons: list[str] = []
    good = 0
    for layer in manifest.layers:
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        signature = layer.annotations.get(SIGNATURE_ANNOTATION, "")
        try:
            payload = await client.get_blob(repo, layer, limit=_MAX_PAYLOAD)
        except ImageError as err:
            reasons.append(f"payload {layer.digest}: {err}")
            continue
        if not verify_signature(payload, signature, keys):
            reasons.append(f"signature on {layer.digest} does not verify with the trusted keys")
            continue
        claims = parse_payload(payload)
        if claims is None:
            reasons.append(f"payload {layer.digest} is not a cosign simple-signing payload")
            continue
        if claims.manifest_digest != image.digest:
            reasons.append(
                f"a signature is for {claims.manifest_digest}, not this image ({image.digest})"
            )
            continue
        if not req.signed_identity.matches(image.reference, claims.docker_reference):
            reasons.append(
                f"signed identity {claims.docker_reference!r} does not match {image.reference} "
                f"under {req.signed_identity.type}"
            )
            continue
        good += 1
    if good:
        return True, "", good
    return False, "; ".join(reasons) or f"{tag} holds no simple-signing signatures", 0


async def _check(
    client: RegistryClient, image: ResolvedImage, req: Requirement
) -> tuple[bool, str, int]:
    if isinstance(req, AcceptAnything):
        return True, "", 0
    if isinstance(req, Reject):
        return False, "the policy rejects every image in this scope", 0
    if isinstance(req, SigstoreSigned):
        return await _sigstore(client, image, req)
    if isinstance(req, SignedBy):
        return False, "signedBy (OpenPGP) signatures cannot be verified by this build", 0
    return False, f"unknown requirement type {req.name!r} (unknown requirements reject)", 0


async def evaluate_policy(
    policy: Policy, image: ResolvedImage, client: RegistryClient
) -> PolicyDecision:
    """Accept ``image`` or raise :class:`PolicyRejectedError` naming scope and requirement.

    ``client`` talks to where the image was found (its signatures are looked up there).
    """
    scope, requirements = policy.requirements_for(image.reference)
    signatures = 0
    for req in requirements:
        ok, reason, count = await _check(client, image, req)
        if not ok:
            log.warning(
                "event=policy_reject image=%s scope=%r requirement=%s reason=%s",
                image.reference,
                scope,
                req.name,
                reason,
            )
            raise PolicyRejectedError(
                image=str(image.reference), scope=scope, requirement=req.name, reason=reason
            )
        signatures += count
    return PolicyDecision(
        image=str(image.reference),
        scope=scope,
        requirements=tuple(r.name for r in requirements),
        signatures=signatures,
    )
