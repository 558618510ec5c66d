"""One ``sigstoreSigned`` requirement's trust, applied to cosign signatures and bundles.

With keys, a signature must verify with one of them. With ``fulcio`` (keyless), the
signature carries a Fulcio certificate: it must chain to the policy's CA, have been
valid when Rekor logged the signature, name the policy's OIDC issuer and email, and its
key must verify the signature. With Rekor keys (required for keyless), the signature
must carry a Rekor SET that verifies and whose logged entry is this very signature.
Every failed check raises :class:`SignatureVerificationError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ociimage.bundles import BundleClaims, parse_bundle, statement_claims
from ociimage.errors import SignatureVerificationError
from ociimage.fulcio import FulcioTrust, verify_fulcio_certificate
from ociimage.policy import SigstoreSigned
from ociimage.rekor import (
    COSIGN_BUNDLE_ANNOTATION,
    RekorEntry,
    check_dsse_entry,
    check_hashedrekord_entry,
    parse_cosign_bundle,
    parse_tlog_entry,
    verify_inclusion_proof,
    verify_set,
)
from ociimage.sigstore import (
    SIGNATURE_ANNOTATION,
    PublicKey,
    load_public_keys,
    verify_signature,
)

__all__ = ["CERTIFICATE_ANNOTATION", "CHAIN_ANNOTATION", "SigstoreVerifier"]

#: The simple-signing layer annotation holding the Fulcio signing certificate (PEM).
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
#: The simple-signing layer annotation holding its intermediates (and root), PEM.
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, kw_only=True)
class SigstoreVerifier:
    """The trust of one ``sigstoreSigned`` requirement, with its keys loaded."""

    keys: tuple[PublicKey, ...] = ()
    fulcio: FulcioTrust | None = None
    rekor_keys: tuple[PublicKey, ...] = ()

    @classmethod
    def for_requirement(cls, req: SigstoreSigned) -> SigstoreVerifier:
        """Load ``req``'s keys (a bad key raises :class:`ConfigFileError`)."""
        return cls(
            keys=tuple(k for pem in req.keys for k in load_public_keys(pem, "sigstoreSigned key")),
            fulcio=req.fulcio,
            rekor_keys=tuple(
                k for pem in req.rekor_keys for k in load_public_keys(pem, "Rekor public key")
            ),
        )

    def _signer(
        self,
        message: bytes,
        signatures: tuple[str, ...],
        certificate_pem: bytes,
        chain_pem: bytes,
        entry: RekorEntry | None,
    ) -> bytes:
        """The verifier (certificate DER or key SPKI DER) one of ``signatures`` verifies
        with, after the keyless checks; raises when none does."""
        if self.fulcio is not None:
            if not certificate_pem:
                raise SignatureVerificationError(
                    "no Fulcio signing certificate comes with the signature"
                )
            if entry is None:
                raise SignatureVerificationError(
                    "keyless verification needs a Rekor SET to date the certificate"
                )
            when = verify_set(entry, self.rekor_keys)
            key = verify_fulcio_certificate(certificate_pem, chain_pem, self.fulcio, when)
            if not any(verify_signature(message, s, [key]) for s in signatures):
                raise SignatureVerificationError(
                    "the signature does not verify with the Fulcio certificate's key"
                )
            return x509.load_pem_x509_certificate(certificate_pem).public_bytes(Encoding.DER)
        if entry is not None:
            verify_set(entry, self.rekor_keys)
        for key in self.keys:
            if any(verify_signature(message, s, [key]) for s in signatures):
                return _spki(key)
        raise SignatureVerificationError("the signature does not verify with the trusted keys")

    def verify_simple_signing(self, payload: bytes, annotations: Mapping[str, str]) -> None:
        """Check a cosign ``.sig`` layer: its payload and its annotations."""
        signature = annotations.get(SIGNATURE_ANNOTATION, "")
        if not signature:
            raise SignatureVerificationError(f"the layer has no {SIGNATURE_ANNOTATION} annotation")
        entry = None
        if self.rekor_keys:
            raw = annotations.get(COSIGN_BUNDLE_ANNOTATION, "")
            if not raw:
                raise SignatureVerificationError(
                    f"no Rekor SET ({COSIGN_BUNDLE_ANNOTATION} annotation), and the policy "
                    "requires one"
                )
            entry = parse_cosign_bundle(raw)
        verifier = self._signer(
            payload,
            (signature,),
            annotations.get(CERTIFICATE_ANNOTATION, "").encode(),
            annotations.get(CHAIN_ANNOTATION, "").encode(),
            entry,
        )
        if entry is not None:
            check_hashedrekord_entry(entry, payload, signature, verifier)

    def verify_bundle(self, data: bytes, digest: str) -> BundleClaims:
        """Check a Sigstore bundle about ``digest``; returns its subject names."""
        bundle = parse_bundle(data)
        entry = None
        if self.rekor_keys:
            if not bundle.tlog_entries:
                raise SignatureVerificationError(
                    "the bundle has no transparency-log entry, and the policy requires one"
                )
            entry = parse_tlog_entry(bundle.tlog_entries[0])
        try:
            verifier = self._signer(
                bundle.pae(), bundle.signatures, bundle.certificate_pem, bundle.chain_pem, entry
            )
        except SignatureVerificationError as err:
            raise SignatureVerificationError(f"the bundle's DSSE signature: {err}") from err
        if entry is not None:
            check_dsse_entry(entry, bundle.payload, bundle.signatures, verifier)
            proof = bundle.tlog_entries[0].get("inclusionProof")
            if proof is not None:
                verify_inclusion_proof(entry, proof, self.rekor_keys)
        return statement_claims(bundle.payload, digest)
