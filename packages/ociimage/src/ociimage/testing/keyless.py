"""A Fulcio-like CA and a Rekor-like log, so keyless signatures can be tested offline.

:class:`FulcioCA` is a root and an intermediate CA that issue short-lived code-signing
certificates carrying an email SAN and Fulcio's OIDC issuer extensions;
:class:`RekorLog` signs entries (``hashedrekord`` for cosign ``.sig`` signatures,
``dsse`` for bundles) with signed entry timestamps the way Rekor does.
:func:`keyless_annotations` and :func:`keyless_bundle` put them together as cosign
stores them; tests may change any part to check that verification refuses it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ociimage.testing.signing import BUNDLE, IN_TOTO, SigningKey, dsse_pae

__all__ = [
    "FulcioCA",
    "KeylessSigner",
    "LoggedEntry",
    "RekorLog",
    "keyless_annotations",
    "keyless_bundle",
    "merkle_path",
    "merkle_root",
]

_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _utf8_string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) < 0x80:
        return bytes([0x0C, len(raw)]) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(size)]) + size + raw


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    path_length: int | None,
    usages: Sequence[x509.ObjectIdentifier] = (),
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "crid tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = _now()
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=365))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if signer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(signer_key, hashes.SHA384())


@dataclass(frozen=True)
class KeylessSigner:
    """A short-lived signing key with its Fulcio-like certificate and chain (PEM)."""

    key: SigningKey
    certificate_pem: bytes
    chain_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem)


class FulcioCA:
    """A root CA and an intermediate CA (P-384) issuing Fulcio-style leaf certificates.

    Like Fulcio's, the intermediate's extended key usage is code signing only
    (``intermediate_usages`` changes that)."""

    def __init__(
        self,
        name: str = "crid test fulcio",
        *,
        intermediate_usages: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CODE_SIGNING,),
    ) -> None:
        self._root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _ca(f"{name} root", self._root_key, None, 1)
        self._intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate = _ca(
            f"{name} intermediate",
            self._intermediate_key,
            (self.root, self._root_key),
            0,
            intermediate_usages,
        )

    @property
    def root_pem(self) -> bytes:
        """The root certificate: what policy.json's ``fulcio.caPath`` points at."""
        return _pem(self.root)

    @property
    def chain_pem(self) -> bytes:
        """Intermediate then root, as cosign's ``dev.sigstore.cosign/chain`` holds them."""
        return _pem(self.intermediate) + _pem(self.root)

    def issue(
        self,
        *,
        email: str,
        issuer: str,
        not_before: datetime.datetime | None = None,
        lifetime: datetime.timedelta = datetime.timedelta(minutes=10),
        issuer_extensions: Sequence[str] = ("v1", "v2"),
        legacy_issuer: str | None = None,
        key_kind: str = "p256",
    ) -> KeylessSigner:
        """A fresh key and its certificate for ``email`` from the OIDC ``issuer``,
        valid from ``not_before`` (default: a minute ago) for ``lifetime``.

        ``issuer_extensions`` picks Fulcio's issuer extensions (``v1``: raw, ``v2``:
        UTF8String); ``legacy_issuer`` writes another issuer into the v1 one."""
        key = SigningKey.generate(key_kind)
        start = not_before or _now() - datetime.timedelta(minutes=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self._intermediate_key.public_key()
                ),
                critical=False,
            )
        )
        if "v1" in issuer_extensions:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(_ISSUER_V1, (legacy_issuer or issuer).encode()),
                critical=False,
            )
        if "v2" in issuer_extensions:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(_ISSUER_V2, _utf8_string(issuer)), critical=False
            )
        certificate = builder.sign(self._intermediate_key, hashes.SHA384())
        return KeylessSigner(key=key, certificate_pem=_pem(certificate), chain_pem=self.chain_pem)


@dataclass(frozen=True, kw_only=True)
class LoggedEntry:
    """An entry the test log signed: its body, position, time and SET."""

    body: str
    integrated_time: int
    log_index: int
    log_id: str
    signed_entry_timestamp: str

    def cosign_annotation(self) -> str:
        """The ``dev.sigstore.cosign/bundle`` annotation value."""
        return json.dumps(
            {
                "SignedEntryTimestamp": self.signed_entry_timestamp,
                "Payload": {
                    "body": self.body,
                    "integratedTime": self.integrated_time,
                    "logIndex": self.log_index,
                    "logID": self.log_id,
                },
            }
        )

    def tlog_entry(
        self, kind: str = "dsse", inclusion_proof: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A Sigstore bundle ``tlogEntries`` item with this entry's SET (and
        ``inclusion_proof``, from :meth:`RekorLog.inclusion_proof`, when given)."""
        extra = {"inclusionProof": dict(inclusion_proof)} if inclusion_proof else {}
        return {
            **extra,
            "logIndex": str(self.log_index),
            "logId": {"keyId": base64.b64encode(bytes.fromhex(self.log_id)).decode()},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(self.integrated_time),
            "inclusionPromise": {"signedEntryTimestamp": self.signed_entry_timestamp},
            "canonicalizedBody": self.body,
        }


@dataclass
class RekorLog:
    """A transparency log's signing key; :meth:`log` signs SETs like Rekor."""

    key: SigningKey = field(default_factory=lambda: SigningKey.generate("p256"))
    next_index: int = 0

    @property
    def public_pem(self) -> bytes:
        """The log's public key: what ``rekorPublicKeyPath`` points at."""
        return self.key.public_pem()

    @property
    def log_id(self) -> str:
        """Rekor's log ID: the SHA-256 of its public key (DER SubjectPublicKeyInfo), hex."""
        der = self.key.private.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    @staticmethod
    def hashedrekord(payload: bytes, signature_b64: str, verifier_pem: bytes) -> dict[str, Any]:
        """The entry cosign logs for a simple-signing signature."""
        return {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {
                    "hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}
                },
                "signature": {
                    "content": signature_b64,
                    "publicKey": {"content": base64.b64encode(verifier_pem).decode()},
                },
            },
        }

    @staticmethod
    def dsse(payload: bytes, signatures_b64: Sequence[str], verifier_pem: bytes) -> dict[str, Any]:
        """The entry logged for a DSSE envelope (its envelope hash is not checked offline)."""
        return {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": "0" * 64},
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [
                    {"signature": s, "verifier": base64.b64encode(verifier_pem).decode()}
                    for s in signatures_b64
                ],
            },
        }

    def checkpoint(self, size: int, root: bytes) -> str:
        """A signed-note checkpoint for a tree of ``size`` entries with ``root``."""
        note = f"crid-test-rekor - 1\n{size}\n{base64.b64encode(root).decode()}\n"
        signature = base64.b64decode(self.key.sign(note.encode()))
        hint = bytes.fromhex(self.log_id)[:4]
        return f"{note}\n\u2014 crid-test-rekor {base64.b64encode(hint + signature).decode()}\n"

    def inclusion_proof(
        self, entry: LoggedEntry, *, position: int = 2, size: int = 5
    ) -> dict[str, Any]:
        """A bundle ``inclusionProof`` placing ``entry`` at ``position`` in a tree of
        ``size`` entries (the others are filler), with a signed checkpoint."""
        leaves = [b"filler %d" % n for n in range(size)]
        leaves[position] = base64.b64decode(entry.body)
        root = merkle_root(leaves)
        return {
            "logIndex": str(position),
            "rootHash": base64.b64encode(root).decode(),
            "treeSize": str(size),
            "hashes": [base64.b64encode(h).decode() for h in merkle_path(position, leaves)],
            "checkpoint": {"envelope": self.checkpoint(size, root)},
        }

    def log(self, entry: Mapping[str, Any], integrated_time: int | None = None) -> LoggedEntry:
        """Log ``entry`` at ``integrated_time`` (default now) and sign its SET."""
        body = base64.b64encode(json.dumps(entry, sort_keys=True).encode()).decode()
        when = integrated_time if integrated_time is not None else int(_now().timestamp())
        index = self.next_index
        self.next_index += 1
        promise = json.dumps(
            {"body": body, "integratedTime": when, "logID": self.log_id, "logIndex": index},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return LoggedEntry(
            body=body,
            integrated_time=when,
            log_index=index,
            log_id=self.log_id,
            signed_entry_timestamp=self.key.sign(promise),
        )


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962's Merkle tree hash of ``leaves`` (at least one)."""
    if len(leaves) == 1:
        return _leaf(leaves[0])
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(
        b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])
    ).digest()


def merkle_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962's audit path for leaf ``index``, from the leaf up."""
    if len(leaves) == 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*merkle_path(index, leaves[:split]), merkle_root(leaves[split:])]
    return [*merkle_path(index - split, leaves[split:]), merkle_root(leaves[:split])]


def keyless_annotations(
    payload: bytes,
    signer: KeylessSigner,
    rekor: RekorLog,
    *,
    integrated_time: int | None = None,
) -> dict[str, str]:
    """The annotations cosign writes on a keyless ``.sig`` layer for ``payload``:
    signature, certificate, chain and the Rekor bundle (SET)."""
    signature = signer.key.sign(payload)
    entry = rekor.log(
        RekorLog.hashedrekord(payload, signature, signer.certificate_pem), integrated_time
    )
    return {
        "dev.cosignproject.cosign/signature": signature,
        "dev.sigstore.cosign/certificate": signer.certificate_pem.decode(),
        "dev.sigstore.cosign/chain": signer.chain_pem.decode(),
        "dev.sigstore.cosign/bundle": entry.cosign_annotation(),
    }


def keyless_bundle(
    statement: bytes,
    signer: KeylessSigner,
    rekor: RekorLog,
    *,
    integrated_time: int | None = None,
    inclusion_proof: bool = True,
) -> dict[str, Any]:
    """A Sigstore bundle v0.3 signing ``statement`` keylessly, with its SET and (unless
    ``inclusion_proof`` is false) an inclusion proof."""
    signature = signer.key.sign(dsse_pae(IN_TOTO, statement))
    entry = rekor.log(
        RekorLog.dsse(statement, [signature], signer.certificate_pem), integrated_time
    )
    proof = rekor.inclusion_proof(entry) if inclusion_proof else None
    der = signer.certificate.public_bytes(Encoding.DER)
    return {
        "mediaType": BUNDLE,
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(der).decode()},
            "tlogEntries": [entry.tlog_entry(inclusion_proof=proof)],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": IN_TOTO,
            "signatures": [{"sig": signature, "keyid": ""}],
        },
    }
