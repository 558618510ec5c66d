"""Cosign ("sigstore") simple-signing signatures: finding them and verifying them with keys.

Cosign stores the signatures of image ``sha256:<hex>`` as the image manifest tagged
``sha256-<hex>.sig`` in the same repository; each layer is a simple-signing payload
(``application/vnd.dev.cosign.simplesigning.v1+json``) with its base64 signature in the
``dev.cosignproject.cosign/signature`` annotation. A signature counts when it verifies
with one of the trusted public keys (ECDSA P-256/P-384, RSA, Ed25519 in PEM), or
keylessly (:mod:`ociimage.verifier`), and its payload names the image's manifest digest.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from ociimage.errors import ConfigFileError

__all__ = [
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "PublicKey",
    "SignaturePayload",
    "load_public_keys",
    "parse_payload",
    "signature_tag",
    "verify_signature",
]

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
_PAYLOAD_TYPE = "cosign container image signature"

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True, kw_only=True)
class SignaturePayload:
    """The critical claims of a simple-signing payload."""

    docker_reference: str
    manifest_digest: str


def signature_tag(digest: str) -> str:
    """``sha256-<hex>.sig``: the tag cosign stores ``digest``'s signatures under."""
    return digest.replace(":", "-", 1) + ".sig"


def load_public_keys(pem: bytes, source: str = "key") -> list[PublicKey]:
    """Every public key in ``pem`` (one or more PEM blocks)."""
    keys: list[PublicKey] = []
    marker = b"-----BEGIN "
    blocks = [marker + b for b in pem.split(marker)[1:]]
    if not blocks:
        raise ConfigFileError(f"{source}: no PEM public key found")
    for block in blocks:
        try:
            key = load_pem_public_key(block)
        except ValueError as err:
            raise ConfigFileError(f"{source}: not a PEM public key: {err}") from err
        if not isinstance(
            key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ):
            raise ConfigFileError(f"{source}: unsupported key type {type(key).__name__}")
        if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in (
            "secp256r1",
            "secp384r1",
            "secp521r1",
        ):
            raise ConfigFileError(f"{source}: unsupported curve {key.curve.name}")
        keys.append(key)
    return keys


def verify_signature(payload: bytes, signature_b64: str, keys: list[PublicKey]) -> bool:
    """Whether ``signature_b64`` is a valid signature of ``payload`` by one of ``keys``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    for key in keys:
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, payload)
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            else:
                algorithm = {"secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}.get(
                    key.curve.name, hashes.SHA256()
                )
                try:
                    key.verify(signature, payload, ec.ECDSA(algorithm))
                except InvalidSignature:
                    if isinstance(algorithm, hashes.SHA256):
                        raise
                    key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            continue
    return False


def parse_payload(payload: bytes, signature_type: str = _PAYLOAD_TYPE) -> SignaturePayload | None:
    """The payload's critical claims, or None when it is not a simple-signing payload of
    ``signature_type`` (cosign's by default; ``atomic container signature`` for OpenPGP)."""
    try:
        doc = json.loads(payload)
        critical = doc["critical"]
        if critical.get("type") != signature_type:
            return None
        reference = critical["identity"]["docker-reference"]
        digest = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(reference, str) or not isinstance(digest, str):
        return None
    return SignaturePayload(docker_reference=reference, manifest_digest=digest)
