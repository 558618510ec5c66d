"""Sigstore bundles (cosign v3) attached to images through the OCI referrers API.

cosign's bundle spec stores a bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``)
as the single layer of an artifact manifest whose ``subject`` is the image; registries
list it in the image's referrers (or in the ``sha256-<hex>`` tag fallback index). A
bundle counts here when its DSSE envelope is signed (PAE, as DSSE specifies) by one of
the trusted public keys and its in-toto statement has the image's digest among its
subjects. Keyless bundles (Fulcio certificates, Rekor proofs) are not verified here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from ociimage.sigstore import PublicKey, verify_signature

__all__ = ["BUNDLE_MEDIA_TYPES", "BundleClaims", "dsse_pae", "verify_bundle"]

#: Media types (and artifact types) of Sigstore bundles.
BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
    }
)
_IN_TOTO = "application/vnd.in-toto+json"


@dataclass(frozen=True, kw_only=True)
class BundleClaims:
    """What a verified bundle says: the subjects' names (repositories) for the digest."""

    subject_names: tuple[str, ...]


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature actually signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def verify_bundle(
    bundle: bytes, keys: list[PublicKey], digest: str
) -> tuple[BundleClaims | None, str]:
    """(claims, "") when ``bundle`` is a key-signed DSSE statement about ``digest``,
    else (None, why not)."""
    try:
        doc = json.loads(bundle)
    except ValueError:
        return None, "the bundle is not JSON"
    if not isinstance(doc, dict):
        return None, "the bundle is not a JSON object"
    if "dsseEnvelope" not in doc:
        if "messageSignature" in doc:
            return None, "message-signature bundles are not supported (only DSSE statements)"
        return None, "not a Sigstore bundle with a DSSE envelope"
    try:
        envelope = doc["dsseEnvelope"]
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [s["sig"] for s in envelope["signatures"]]
    except (KeyError, TypeError, binascii.Error):
        return None, "the bundle's DSSE envelope is malformed"
    if payload_type != _IN_TOTO:
        return None, f"DSSE payload type {payload_type!r} is not an in-toto statement"
    pae = dsse_pae(payload_type, payload)
    if not any(verify_signature(pae, sig, keys) for sig in signatures if isinstance(sig, str)):
        return None, "the bundle's DSSE signature does not verify with the trusted keys"
    algorithm, _, encoded = digest.partition(":")
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        names = tuple(
            str(s.get("name", ""))
            for s in subjects
            if isinstance(s, dict) and s.get("digest", {}).get(algorithm) == encoded
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "the bundle's statement is malformed"
    if not names:
        return None, f"the bundle's statement is not about {digest}"
    return BundleClaims(subject_names=names), ""
