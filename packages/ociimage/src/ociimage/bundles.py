"""Sigstore bundles (cosign v3) attached to images through the OCI referrers API.

cosign's bundle spec stores a bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``)
as the single layer of an artifact manifest whose ``subject`` is the image; registries
list it in the image's referrers (or in the ``sha256-<hex>`` tag fallback index). This
module reads a bundle: its DSSE envelope (an in-toto statement naming the image's digest
among its subjects), its verification material (a public-key hint, or a Fulcio
certificate with its chain) and its transparency-log entries. :mod:`ociimage.verifier`
decides whether it holds.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ociimage.errors import SignatureVerificationError

__all__ = [
    "BUNDLE_MEDIA_TYPES",
    "Bundle",
    "BundleClaims",
    "dsse_pae",
    "parse_bundle",
    "statement_claims",
]

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


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """A parsed (unverified) DSSE bundle.

    ``certificate_pem``/``chain_pem`` are empty for key-signed bundles; ``tlog_entries``
    are the raw ``tlogEntries`` items.
    """

    payload_type: str
    payload: bytes
    signatures: tuple[str, ...]
    certificate_pem: bytes = b""
    chain_pem: bytes = b""
    tlog_entries: tuple[Any, ...] = ()

    def pae(self) -> bytes:
        """What the DSSE signatures sign."""
        return dsse_pae(self.payload_type, self.payload)


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature actually signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _pem(raw: Any) -> bytes:
    """The PEM of a bundle's ``{"rawBytes": base64 DER}`` certificate."""
    try:
        der = base64.b64decode(raw["rawBytes"], validate=True)
        return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
    except (KeyError, TypeError, binascii.Error, ValueError) as err:
        raise SignatureVerificationError("the bundle's certificate is malformed") from err


def _certificates(material: Any) -> tuple[bytes, bytes]:
    """(leaf PEM, chain PEM) from ``verificationMaterial`` (v0.3 ``certificate``, or the
    older ``x509CertificateChain``); empty for key-signed bundles."""
    if not isinstance(material, dict):
        return b"", b""
    if "certificate" in material:
        return _pem(material["certificate"]), b""
    chain = material.get("x509CertificateChain")
    if isinstance(chain, dict) and isinstance(chain.get("certificates"), list):
        pems = [_pem(c) for c in chain["certificates"]]
        if pems:
            return pems[0], b"".join(pems[1:])
    return b"", b""


def parse_bundle(data: bytes) -> Bundle:
    """The DSSE envelope and verification material of a bundle; raises
    :class:`SignatureVerificationError` saying what is missing or malformed."""
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise SignatureVerificationError("the bundle is not JSON") from err
    if not isinstance(doc, dict):
        raise SignatureVerificationError("the bundle is not a JSON object")
    if "dsseEnvelope" not in doc:
        if "messageSignature" in doc:
            raise SignatureVerificationError(
                "message-signature bundles are not supported (only DSSE statements)"
            )
        raise SignatureVerificationError("not a Sigstore bundle with a DSSE envelope")
    try:
        envelope = doc["dsseEnvelope"]
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = tuple(s["sig"] for s in envelope["signatures"])
    except (KeyError, TypeError, binascii.Error) as err:
        raise SignatureVerificationError("the bundle's DSSE envelope is malformed") from err
    if payload_type != _IN_TOTO:
        raise SignatureVerificationError(
            f"DSSE payload type {payload_type!r} is not an in-toto statement"
        )
    material = doc.get("verificationMaterial")
    certificate, chain = _certificates(material)
    entries = material.get("tlogEntries", []) if isinstance(material, dict) else []
    return Bundle(
        payload_type=payload_type,
        payload=payload,
        signatures=tuple(s for s in signatures if isinstance(s, str)),
        certificate_pem=certificate,
        chain_pem=chain,
        tlog_entries=tuple(entries) if isinstance(entries, list) else (),
    )


def statement_claims(payload: bytes, digest: str) -> BundleClaims:
    """The subject names an in-toto statement gives for ``digest``."""
    algorithm, _, encoded = digest.partition(":")
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        names = tuple(
            str(s.get("name", ""))
            for s in subjects
            if isinstance(s, dict) and s.get("digest", {}).get(algorithm) == encoded
        )
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise SignatureVerificationError("the bundle's statement is malformed") from err
    if not names:
        raise SignatureVerificationError(f"the bundle's statement is not about {digest}")
    return BundleClaims(subject_names=names)
