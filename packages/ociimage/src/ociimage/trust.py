"""Evaluating the signature policy for an image found in a registry, before any layer moves.

:func:`evaluate_policy` applies the requirements of the scope matching the image's
logical reference; every requirement must hold. Signatures are looked up for, and must
name, the manifest that is pulled: for an image found through an index, the chosen
platform's manifest, never the index (as containers/image evaluates the instance it
copies; a signature on the index alone does not admit it).

* ``sigstoreSigned`` looks, where the image was found and when registries.d enables
  ``use-sigstore-attachments`` (always when no registries.d is given), for cosign
  signatures (the ``sha256-<hex>.sig`` tag), then Sigstore bundles among the image's
  OCI referrers; one must verify (with a trusted key, or keyless with a Fulcio
  certificate and a Rekor SET, see :mod:`ociimage.verifier`), name the image's digest
  and satisfy the identity rule.
* ``signedBy`` (GPG keys) reads OpenPGP signatures from the registries.d ``lookaside``
  (else the registry's signature API) and verifies them with ``gpgv``.

Requirements that cannot be evaluated here (``sigstoreSigned`` with ``pki``, unknown
types) reject.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ociimage._bodies import content_encoding, decode, read_capped
from ociimage.client import RegistryClient
from ociimage.errors import (
    ContentNotFoundError,
    ImageError,
    LookasideError,
    PolicyRejectedError,
    ResponseTooLargeError,
    SignatureVerificationError,
)
from ociimage.limits import ResponseLimits
from ociimage.policy import (
    AcceptAnything,
    Policy,
    Reject,
    Requirement,
)
from ociimage.resolved import LocatedImage
from ocispec.errors import SpecError
from ocispec.image import Manifest

if TYPE_CHECKING:
    from ociimage._signed import SignedBy, SigstoreSigned
    from ociimage.registries_d import RegistriesD, SignatureStorage

    # cryptography and gpgv come in only when a signature is checked
    from ociimage.verifier import SigstoreVerifier

__all__ = ["PolicyDecision", "evaluate_policy"]

log = logging.getLogger(__name__)

_ATOMIC = "atomic container signature"


def _default_storage() -> SignatureStorage:
    """Where signatures are looked for when no registries.d is configured (registries.d's
    code loads only when a requirement looks for signatures)."""
    from ociimage.registries_d import SignatureStorage

    return SignatureStorage(use_sigstore_attachments=True)


class PolicyDecision:
    """An accepted image: the scope that applied, the requirements that held, and the
    manifest digest they were evaluated against (the platform manifest's).

    A plain class: a dataclass costs an importer about a millisecond, and every pull
    with a policy imports this module."""

    __slots__ = ("digest", "image", "requirements", "scope", "signatures")

    def __init__(
        self,
        *,
        image: str,
        scope: str,
        requirements: tuple[str, ...],
        signatures: int = 0,
        digest: str = "",
    ) -> None:
        self.image = image
        self.scope = scope
        self.requirements = requirements
        self.signatures = signatures
        self.digest = digest

    def __repr__(self) -> str:
        return (
            f"PolicyDecision(image={self.image!r}, scope={self.scope!r}, "
            f"requirements={self.requirements!r}, signatures={self.signatures}, "
            f"digest={self.digest!r})"
        )


async def _sigstore(
    client: RegistryClient, image: LocatedImage, req: SigstoreSigned, storage: SignatureStorage
) -> tuple[bool, str, int]:
    """(accepted, reason, verified signature count)."""
    # Signature checks import cryptography (~10 MiB resident): only when a policy asks.
    from ociimage.sigstore import SIMPLE_SIGNING_MEDIA_TYPE, parse_payload, signature_tag
    from ociimage.verifier import SigstoreVerifier

    if req.pki is not None:
        return False, "sigstoreSigned with pki (X.509 CA keys) is not supported", 0
    if not storage.use_sigstore_attachments:
        return False, "registries.d does not enable use-sigstore-attachments for this image", 0
    verifier = SigstoreVerifier.for_requirement(req)
    repo = image.source.reference.path
    tag = signature_tag(image.signed_digest)
    try:
        fetched = await client.get_manifest(repo, tag)
        manifest = Manifest.from_json(fetched.data)
    except ContentNotFoundError:
        manifest = None
    except (SpecError, ImageError) as err:
        return False, f"the signature manifest {tag} is unusable: {err}", 0
    reasons: list[str] = []
    good = 0
    for layer in manifest.layers if manifest is not None else ():
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        try:
            payload = await client.get_blob(repo, layer, limit=client.limits.max_signature_bytes)
        except ImageError as err:
            reasons.append(f"payload {layer.digest}: {err}")
            continue
        try:
            verifier.verify_simple_signing(payload, layer.annotations)
        except SignatureVerificationError as err:
            reasons.append(f"signature {layer.digest}: {err}")
            continue
        claims = parse_payload(payload)
        if claims is None:
            reasons.append(f"payload {layer.digest} is not a cosign simple-signing payload")
            continue
        if claims.manifest_digest != image.signed_digest:
            reasons.append(
                f"a signature is for {claims.manifest_digest}, not this image "
                f"({image.signed_digest})"
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
    bundled, bundle_reasons = await _bundles(client, image, req, verifier)
    if bundled:
        return True, "", bundled
    reasons += bundle_reasons
    if not reasons:
        return False, f"no sigstore signatures found ({tag} or bundles in {client.host}/{repo})", 0
    return False, "; ".join(reasons), 0


async def _bundles(
    client: RegistryClient,
    image: LocatedImage,
    req: SigstoreSigned,
    verifier: SigstoreVerifier,
) -> tuple[int, list[str]]:
    """(verified bundles, reasons) for Sigstore bundles among the image's referrers."""
    from ociimage.bundles import BUNDLE_MEDIA_TYPES

    repo = image.source.reference.path
    reasons: list[str] = []
    good = 0
    try:
        referrers = await client.referrers(repo, image.signed_digest)
    except ImageError as err:
        return 0, [f"referrers: {err}"]
    for ref in referrers:
        if ref.artifact_type not in BUNDLE_MEDIA_TYPES:
            continue
        try:
            manifest = Manifest.from_json((await client.get_manifest(repo, ref.digest)).data)
        except (SpecError, ImageError) as err:
            reasons.append(f"bundle manifest {ref.digest}: {err}")
            continue
        for layer in manifest.layers:
            if layer.media_type not in BUNDLE_MEDIA_TYPES:
                continue
            try:
                data = await client.get_blob(repo, layer, limit=client.limits.max_signature_bytes)
            except ImageError as err:
                reasons.append(f"bundle {layer.digest}: {err}")
                continue
            try:
                claims = verifier.verify_bundle(data, image.signed_digest)
            except SignatureVerificationError as err:
                reasons.append(f"bundle {layer.digest}: {err}")
                continue
            if not any(
                req.signed_identity.matches(image.reference, name) for name in claims.subject_names
            ):
                reasons.append(
                    f"bundle {layer.digest} names {', '.join(claims.subject_names)}, which does "
                    f"not match {image.reference} under {req.signed_identity.type}"
                )
            else:
                good += 1
    return good, reasons


async def _lookaside(
    storage: SignatureStorage, image: LocatedImage, limits: ResponseLimits
) -> list[bytes]:
    """The OpenPGP signatures stored for the image's digest, in order; each is read only
    up to ``max_signature_bytes``, and at most ``max_lookaside_signatures`` of them."""
    out: list[bytes] = []
    scheme = urlsplit(storage.lookaside).scheme
    cap = limits.max_signature_bytes
    import httpx  # lookaside signatures only

    headers = {"Accept-Encoding": "identity"}
    async with httpx.AsyncClient(timeout=30.0, follow_redirects=True, headers=headers) as http:
        for index in range(1, limits.max_lookaside_signatures + 1):
            url = storage.lookaside_url(image.reference, image.signed_digest, index)
            if scheme == "file":
                path = Path(unquote(urlsplit(url).path))
                try:
                    out.append(await asyncio.to_thread(_read_file, path, cap))
                except FileNotFoundError:
                    break
                continue
            async with http.stream("GET", url) as response:
                if response.status_code == 404:
                    break
                if response.status_code != 200:
                    raise LookasideError(f"{url}: HTTP {response.status_code}")
                raw = await read_capped(response, cap, "lookaside signature")
                out.append(
                    decode(raw, content_encoding(response.headers), cap, url, "lookaside signature")
                )
    return out


def _read_file(path: Path, limit: int) -> bytes:
    """A file lookaside's signature, refused past ``limit`` bytes."""
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ResponseTooLargeError(f"{path}: lookaside signature larger than {limit} bytes")
    return data


async def _signed_by(
    client: RegistryClient, image: LocatedImage, req: SignedBy, storage: SignatureStorage
) -> tuple[bool, str, int]:
    from ociimage._gpgv import verify_inline
    from ociimage.sigstore import parse_payload

    if storage.lookaside:
        import httpx

        try:
            signatures = await _lookaside(storage, image, client.limits)
        except (ImageError, httpx.HTTPError, OSError) as err:
            return False, f"cannot read lookaside signatures: {err}", 0
        if not signatures:
            return (
                False,
                f"no signatures in the lookaside {storage.lookaside} for {image.signed_digest}",
                0,
            )
    else:
        # no lookaside: the registry's own signature API, where it has one
        try:
            signatures = await client.signatures_extension(
                image.source.reference.path, image.signed_digest
            )
        except ImageError as err:
            return False, f"cannot read the registry's signatures: {err}", 0
        if not signatures:
            return False, "no lookaside in registries.d and no signatures from the registry", 0
    reasons: list[str] = []
    good = 0
    for n, signature in enumerate(signatures, 1):
        try:
            verified = await verify_inline(signature, list(req.keys))
        except (TimeoutError, OSError) as err:
            reasons.append(f"signature-{n}: gpgv failed: {err}")
            continue
        if verified is None:
            reasons.append(f"signature-{n} is not signed by a trusted key")
            continue
        claims = parse_payload(verified.content, _ATOMIC)
        if claims is None:
            reasons.append(f"signature-{n} does not hold a simple-signing payload")
        elif claims.manifest_digest != image.signed_digest:
            reasons.append(
                f"signature-{n} is for {claims.manifest_digest}, not {image.signed_digest}"
            )
        elif not req.signed_identity.matches(image.reference, claims.docker_reference):
            reasons.append(
                f"signature-{n} identity {claims.docker_reference!r} does not match "
                f"{image.reference} under {req.signed_identity.type}"
            )
        else:
            good += 1
    if good:
        return True, "", good
    return False, "; ".join(reasons), 0


async def _check(
    client: RegistryClient, image: LocatedImage, req: Requirement, storage: SignatureStorage | None
) -> tuple[bool, str, int]:
    if isinstance(req, AcceptAnything):
        return True, "", 0
    if isinstance(req, Reject):
        return False, "the policy rejects every image in this scope", 0
    from ociimage._signed import SignedBy, SigstoreSigned

    if isinstance(req, SigstoreSigned):
        return await _sigstore(client, image, req, storage or _default_storage())
    if isinstance(req, SignedBy):
        return await _signed_by(client, image, req, storage or _default_storage())
    return False, f"unknown requirement type {req.name!r} (unknown requirements reject)", 0


async def evaluate_policy(
    policy: Policy,
    image: LocatedImage,
    client: RegistryClient,
    registries_d: RegistriesD | None = None,
) -> PolicyDecision:
    """Accept ``image`` or raise :class:`PolicyRejectedError` naming scope and requirement.

    ``client`` talks to where the image was found (its sigstore signatures are looked up
    there); ``registries_d`` says where signatures live (default: sigstore attachments).
    """
    scope, requirements = policy.requirements_for(image.reference)
    storage = registries_d.for_reference(image.reference) if registries_d is not None else None
    signatures = 0
    for req in requirements:
        ok, reason, count = await _check(client, image, req, storage)
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
        digest=image.signed_digest,
    )
