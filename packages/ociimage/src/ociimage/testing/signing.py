"""Cosign-style signatures for test images (needs ``cryptography``).

:class:`SigningKey` generates an ECDSA P-256/P-384, RSA or Ed25519 key and signs
simple-signing payloads the way cosign does; :func:`push_signature` stores them as the
``sha256-<hex>.sig`` image in a registry, so signature policies can be tested against a
real registry without cosign. ``payload_digest``/``payload_reference`` let tests sign
a lie (another digest or identity) to check that verification refuses it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ociimage.testing.images import Blob, canonical_json
from ociimage.testing.push import RegistryPusher
from ociimage.testing.registry import LocalRegistry

__all__ = [
    "SigningKey",
    "attach_bundle",
    "dsse_pae",
    "in_toto_statement",
    "push_bundle",
    "push_signature",
    "push_signed_layer",
    "simple_signing_payload",
    "tampered",
]

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"


@dataclass(frozen=True)
class SigningKey:
    """A private key and its kind: ``p256``, ``p384``, ``rsa`` or ``ed25519``."""

    kind: str
    private: Any

    @classmethod
    def generate(cls, kind: str = "p256") -> SigningKey:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        if kind == "p256":
            return cls(kind, ec.generate_private_key(ec.SECP256R1()))
        if kind == "p384":
            return cls(kind, ec.generate_private_key(ec.SECP384R1()))
        if kind == "rsa":
            return cls(kind, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if kind == "ed25519":
            return cls(kind, ed25519.Ed25519PrivateKey.generate())
        raise ValueError(f"unknown key kind {kind!r}")

    def public_pem(self) -> bytes:
        """The public key, PEM (SubjectPublicKeyInfo), as policy.json's keyPath wants it."""
        from cryptography.hazmat.primitives import serialization

        key = self.private.public_key()
        pem: bytes = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def sign(self, payload: bytes) -> str:
        """The base64 signature of ``payload``, as cosign writes it."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding

        if self.kind == "ed25519":
            raw = self.private.sign(payload)
        elif self.kind == "rsa":
            raw = self.private.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            raw = self.private.sign(payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()


def simple_signing_payload(reference: str, digest: str) -> bytes:
    """A cosign simple-signing payload claiming ``reference`` at ``digest``."""
    return canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def push_signed_layer(
    registry: LocalRegistry | str,
    repository: str,
    digest: str,
    payload: bytes,
    annotations: Mapping[str, str],
) -> str:
    """Push ``sha256-<hex>.sig`` for ``digest`` with one simple-signing layer holding
    ``payload`` and ``annotations`` (signature, certificate, chain, Rekor bundle) exactly
    as given, so tests can also store broken ones. Returns the manifest's digest."""
    layer = Blob.of(SIMPLE_SIGNING, payload)
    config = Blob.json("application/vnd.oci.image.config.v1+json", {})
    manifest = Blob.json(
        "application/vnd.oci.image.manifest.v1+json",
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor(),
            "layers": [layer.descriptor(annotations=dict(annotations))],
        },
    )
    with RegistryPusher(registry) as pusher:
        pusher.push_blob(repository, config.data, config.digest)
        pusher.push_blob(repository, layer.data, layer.digest)
        pusher.push_manifest(repository, digest.replace(":", "-", 1) + ".sig", manifest)
    return manifest.digest


def push_signature(
    registry: LocalRegistry | str,
    repository: str,
    digest: str,
    key: SigningKey,
    *,
    payload_reference: str,
    payload_digest: str | None = None,
    tamper: bool = False,
) -> str:
    """Sign and push ``sha256-<hex>.sig`` for ``digest`` in ``repository``; returns its digest.

    ``tamper`` signs the payload, then stores a changed payload under that signature.
    """
    payload = simple_signing_payload(payload_reference, payload_digest or digest)
    signature = key.sign(payload)
    if tamper:
        payload = tampered(payload)
    return push_signed_layer(registry, repository, digest, payload, {ANNOTATION: signature})


def tampered(payload: bytes) -> bytes:
    """``payload`` with one letter changed (still a well-formed payload)."""
    return payload.replace(b"container image signature", b"container image signaturE")


BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"


def in_toto_statement(subject_name: str, digest: str) -> bytes:
    """The in-toto statement cosign v3 signs for an image: ``subject_name`` at ``digest``."""
    algorithm, _, encoded = digest.partition(":")
    return canonical_json(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": subject_name, "digest": {algorithm: encoded}}],
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
            "predicate": {},
        }
    )


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """What a DSSE signature signs (its pre-authentication encoding)."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def push_bundle(
    registry: LocalRegistry | str,
    repository: str,
    digest: str,
    key: SigningKey,
    *,
    subject_name: str,
    statement_digest: str | None = None,
) -> str:
    """Attach a key-signed Sigstore bundle (DSSE in-toto statement) to ``digest``, as
    cosign v3 does. Returns the artifact manifest's digest."""
    statement = in_toto_statement(subject_name, statement_digest or digest)
    bundle = {
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": "crid-test"}},
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": key.sign(dsse_pae(IN_TOTO, statement)), "keyid": ""}],
        },
    }
    return attach_bundle(registry, repository, digest, bundle)


def attach_bundle(
    registry: LocalRegistry | str, repository: str, digest: str, bundle: Mapping[str, Any]
) -> str:
    """Attach the bundle document ``bundle`` to ``digest``: an artifact manifest with
    ``subject``, listed in the referrers tag fallback index (``sha256-<hex>``), which
    it replaces. Returns the artifact manifest's digest."""
    blob = Blob.json(BUNDLE, bundle)
    empty = Blob.of("application/vnd.oci.empty.v1+json", b"{}")
    with RegistryPusher(registry) as pusher:
        subject = pusher.fetch_manifest(repository, digest)
        artifact = Blob.json(
            "application/vnd.oci.image.manifest.v1+json",
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": BUNDLE,
                "config": empty.descriptor(),
                "layers": [blob.descriptor()],
                "subject": subject.descriptor(),
            },
        )
        pusher.push_blob(repository, empty.data, empty.digest)
        pusher.push_blob(repository, blob.data, blob.digest)
        pusher.push_manifest(repository, artifact.digest, artifact)
        index = Blob.json(
            "application/vnd.oci.image.index.v1+json",
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [artifact.descriptor(artifactType=BUNDLE)],
            },
        )
        pusher.push_manifest(repository, digest.replace(":", "-", 1), index)
    return artifact.digest
