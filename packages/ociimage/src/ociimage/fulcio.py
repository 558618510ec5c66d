"""Fulcio (keyless sigstore) signing certificates: chain, validity time and identity.

A keyless signature is made with a short-lived key whose certificate Fulcio issued for
an OIDC identity. Verifying it means: the certificate chains (through the intermediates
the signature carries) to a CA the policy trusts, it was valid at the time a Rekor SET
proves the signature was logged (not now: it expires minutes after signing), it allows
code signing, and its OIDC issuer extension and email SAN are the ones the policy names.
The chain is built and checked by ``cryptography``'s X.509 path validation.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from ociimage.errors import ConfigFileError, SignatureVerificationError
from ociimage.sigstore import PublicKey

__all__ = [
    "OIDC_ISSUER_OID",
    "OIDC_ISSUER_V2_OID",
    "FulcioTrust",
    "load_certificates",
    "oidc_issuer",
    "verify_fulcio_certificate",
]

#: Fulcio's original issuer extension: the issuer URL as raw bytes (deprecated).
OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
#: Fulcio's issuer extension since 2022: the issuer URL as a DER UTF8String.
OIDC_ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_MAX_CHAIN_DEPTH = 8


@dataclass(frozen=True, kw_only=True)
class FulcioTrust:
    """policy.json's ``fulcio`` object: trusted CA certificates (PEM) and the identity."""

    ca_certificates: bytes
    oidc_issuer: str
    subject_email: str


def load_certificates(pem: bytes, source: str = "certificates") -> list[x509.Certificate]:
    """Every certificate in ``pem``; a file with none is a configuration error."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as err:
        raise ConfigFileError(f"{source}: no PEM certificate found: {err}") from err
    return certificates


def _utf8_string(der: bytes) -> str:
    """The text of a DER UTF8String (tag 12), as the v2 issuer extension holds."""
    if len(der) < 2 or der[0] != 0x0C:
        raise SignatureVerificationError("the certificate's OIDC issuer is not a UTF8String")
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            raise SignatureVerificationError("the certificate's OIDC issuer has a bad length")
        length, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if offset + length != len(der):
        raise SignatureVerificationError("the certificate's OIDC issuer has a bad length")
    try:
        return der[offset:].decode()
    except UnicodeDecodeError as err:
        raise SignatureVerificationError("the certificate's OIDC issuer is not UTF-8") from err


def oidc_issuer(certificate: x509.Certificate) -> str:
    """The OIDC issuer Fulcio recorded in ``certificate`` (v1 and v2 extensions; both, when
    present, must agree)."""
    found: list[str] = []
    for oid in (OIDC_ISSUER_OID, OIDC_ISSUER_V2_OID):
        try:
            ext = certificate.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
        if oid == OIDC_ISSUER_V2_OID:
            found.append(_utf8_string(raw))
        else:
            try:
                found.append(raw.decode())
            except UnicodeDecodeError as err:
                raise SignatureVerificationError(
                    "the certificate's OIDC issuer is not UTF-8"
                ) from err
    if not found:
        raise SignatureVerificationError("the certificate has no Fulcio OIDC issuer extension")
    if len(set(found)) > 1:
        raise SignatureVerificationError(
            f"the certificate's OIDC issuer extensions disagree ({' vs '.join(found)})"
        )
    return found[0]


def _emails(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(san.value.get_values_for_type(x509.RFC822Name))


def _allows_code_signing(certificate: x509.Certificate) -> bool:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CODE_SIGNING in eku.value


def _ca_code_signing(
    policy: verification.Policy, certificate: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    """A CA's EKU, when it has one, must allow code signing (Fulcio's intermediate has
    exactly that one, which the Web PKI default, client authentication, would refuse)."""
    if eku is not None and not {
        ExtendedKeyUsageOID.CODE_SIGNING,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    } & set(eku):
        raise ValueError("a CA certificate's extended key usage does not allow code signing")


#: Web PKI CA rules, except that CA EKUs are checked for code signing.
_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _ca_code_signing
)


def verify_fulcio_certificate(
    certificate_pem: bytes,
    chain_pem: bytes,
    trust: FulcioTrust,
    at: datetime.datetime,
) -> PublicKey:
    """The public key of a Fulcio certificate that holds for ``trust`` at time ``at``.

    ``chain_pem`` holds the intermediates (and possibly the root) shipped with the
    signature; only ``trust.ca_certificates`` are trusted. Raises
    :class:`SignatureVerificationError` naming the check that failed.
    """
    try:
        leaf = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError as err:
        raise SignatureVerificationError(f"the signing certificate is not PEM: {err}") from err
    try:
        intermediates = x509.load_pem_x509_certificates(chain_pem) if chain_pem.strip() else []
    except ValueError as err:
        raise SignatureVerificationError(f"the certificate chain is not PEM: {err}") from err
    roots = load_certificates(trust.ca_certificates, "fulcio CA")
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        raise SignatureVerificationError(
            f"the signing certificate was not valid at {at.isoformat()} (the time Rekor "
            f"logged the signature): it is valid from {leaf.not_valid_before_utc.isoformat()} "
            f"to {leaf.not_valid_after_utc.isoformat()}"
        )
    if not _allows_code_signing(leaf):
        raise SignatureVerificationError("the signing certificate does not allow code signing")
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(at)
        .max_chain_depth(_MAX_CHAIN_DEPTH)
        .extension_policies(
            ca_policy=_CA_POLICY,
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as err:
        raise SignatureVerificationError(
            f"the signing certificate does not chain to the policy's Fulcio CA: {err}"
        ) from err
    issuer = oidc_issuer(leaf)
    if issuer != trust.oidc_issuer:
        raise SignatureVerificationError(
            f"the certificate's OIDC issuer {issuer!r} is not the policy's {trust.oidc_issuer!r}"
        )
    emails = _emails(leaf)
    if trust.subject_email not in emails:
        shown = ", ".join(emails) if emails else "none"
        raise SignatureVerificationError(
            f"the certificate's email SAN ({shown}) is not the policy's {trust.subject_email!r}"
        )
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise SignatureVerificationError(
            f"the signing certificate's key type {type(key).__name__} is not supported"
        )
    return key
