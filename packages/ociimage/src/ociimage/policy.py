"""``policy.json`` (containers-policy.json(5)): which images may be pulled, and signed by whom.

Parsing is strict, as the format asks: unknown fields reject the whole file. For the
``docker`` transport the requirements of the most specific scope apply: the full
reference (``repo:tag`` / ``repo@digest``), the repository, each enclosing namespace,
the registry host, then ``*.domain`` wildcards from the most specific, then the
transport's ``""`` scope, then ``default``. Every requirement in the list must hold.
A requirement type this module does not know parses as :class:`UnknownRequirement`,
which always rejects: the policy never fails open.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ociimage._policy_keys import read_fulcio, read_keys
from ociimage.errors import ConfigFileError, InvalidReferenceError
from ociimage.reference import Reference, parse_reference, split_reference

if TYPE_CHECKING:
    from ociimage._signed import SignedBy, SignedIdentity, SigstoreSigned, UnknownRequirement

#: Built on first use (see ociimage._signed): a policy that checks no signatures never
#: needs them.
_SIGNED = frozenset({"SignedBy", "SignedIdentity", "SigstoreSigned", "UnknownRequirement"})

__all__ = [
    "DEFAULT_POLICY",
    "AcceptAnything",
    "Policy",
    "Reject",
    "Requirement",
    "SignedBy",
    "SignedIdentity",
    "SigstoreSigned",
    "UnknownRequirement",
    "load_policy",
]

#: The system-wide policy file.
DEFAULT_POLICY = Path("/etc/containers/policy.json")

_IDENTITY_TYPES = {
    "matchExact",
    "matchRepoDigestOrExact",
    "matchRepository",
    "exactReference",
    "exactRepository",
    "remapIdentity",
}


@dataclass(frozen=True, kw_only=True)
class Requirement(ABC):
    """One entry of a scope's requirement list."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The requirement's ``type`` as written in policy.json."""


@dataclass(frozen=True, kw_only=True)
class AcceptAnything(Requirement):
    """``insecureAcceptAnything``: no check at all."""

    @property
    def name(self) -> str:
        return "insecureAcceptAnything"


@dataclass(frozen=True, kw_only=True)
class Reject(Requirement):
    """``reject``: never."""

    @property
    def name(self) -> str:
        return "reject"


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A parsed policy.json."""

    default: tuple[Requirement, ...]
    docker: Mapping[str, tuple[Requirement, ...]] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def parse(
        cls, text: str | bytes, path: str | None = None, *, base: Path | None = None
    ) -> Policy:
        """Parse policy.json text; relative key paths resolve against ``base``."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigFileError(f"not valid JSON: {err}", path) from err
        if not isinstance(doc, dict):
            raise ConfigFileError("a policy must be a JSON object", path)
        _only(doc, {"default", "transports"}, "the policy", path)
        if "default" not in doc:
            raise ConfigFileError('"default" is required', path)
        default = _requirements(doc["default"], "default", path, base)
        transports = doc.get("transports", {})
        if not isinstance(transports, dict):
            raise ConfigFileError('"transports" must be an object', path)
        docker: dict[str, tuple[Requirement, ...]] = {}
        for transport, scopes in transports.items():
            if not isinstance(scopes, dict):
                raise ConfigFileError(f"transports.{transport} must be an object", path)
            parsed = {
                scope: _requirements(reqs, f"transports.{transport}[{scope!r}]", path, base)
                for scope, reqs in scopes.items()
            }
            if transport == "docker":
                for scope in parsed:
                    _check_docker_scope(scope, path)
                docker = parsed
        return cls(default=default, docker=docker, path=path)

    @property
    def checks_signatures(self) -> bool:
        """Whether any scope requires a signature (else registries.d is never read)."""
        every = [*self.default, *(r for reqs in self.docker.values() for r in reqs)]
        if all(isinstance(r, (AcceptAnything, Reject)) for r in every):
            return False
        from ociimage._signed import SignedBy, SigstoreSigned

        return any(isinstance(r, (SignedBy, SigstoreSigned)) for r in every)

    def scope_for(self, reference: Reference) -> str | None:
        """The ``docker`` scope that applies to ``reference``: None means ``default``."""
        for scope in _candidate_scopes(reference):
            if scope in self.docker:
                return scope
        return None

    def requirements_for(self, reference: Reference) -> tuple[str, tuple[Requirement, ...]]:
        """(scope, requirements) for ``reference``; the scope is ``default`` when none matched."""
        scope = self.scope_for(reference)
        if scope is None:
            return "default", self.default
        return scope, self.docker[scope]


def _candidate_scopes(reference: Reference) -> list[str]:
    out: list[str] = []
    if reference.digest:
        out.append(f"{reference.name}@{reference.digest}")
    if reference.tag or not reference.digest:
        out.append(f"{reference.name}:{reference.tag_or_latest}")
    parts = reference.name.split("/")
    for end in range(len(parts), 0, -1):
        out.append("/".join(parts[:end]))
    host = reference.domain.rsplit(":", 1)[0] if not reference.domain.endswith("]") else ""
    labels = host.split(".") if host else []
    for start in range(1, len(labels)):
        out.append("*." + ".".join(labels[start:]))
    out.append("")
    return out


def _check_docker_scope(scope: str, path: str | None) -> None:
    if scope == "":
        return
    if scope.startswith("*."):
        if "/" in scope or ":" in scope or len(scope) < 3:
            raise ConfigFileError(f"invalid wildcard scope {scope!r}: want *.domain", path)
        return
    try:
        domain, _, _, _ = split_reference(scope + ("/x" if "/" not in scope else ""))
    except InvalidReferenceError as err:
        raise ConfigFileError(f"invalid docker scope {scope!r}: {err}", path) from err
    if not domain:
        raise ConfigFileError(
            f"docker scope {scope!r} must start with a registry host (e.g. docker.io/library/x)",
            path,
        )


def _only(doc: Mapping[str, Any], allowed: set[str], what: str, path: str | None) -> None:
    unknown = set(doc) - allowed
    if unknown:
        raise ConfigFileError(f"unknown fields {sorted(unknown)} in {what}", path)


def _requirements(
    raw: Any, where: str, path: str | None, base: Path | None
) -> tuple[Requirement, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigFileError(f"{where} must be a non-empty list of requirements", path)
    return tuple(_requirement(r, where, path, base) for r in raw)


def _identity(raw: Any, where: str, path: str | None) -> SignedIdentity:
    from ociimage._signed import SignedIdentity

    if raw is None:
        return SignedIdentity()
    if not isinstance(raw, dict) or raw.get("type") not in _IDENTITY_TYPES:
        raise ConfigFileError(f"{where}: unknown signedIdentity {raw!r}", path)
    kind = raw["type"]
    fields = {
        "exactReference": {"dockerReference"},
        "exactRepository": {"dockerRepository"},
        "remapIdentity": {"prefix", "signedPrefix"},
    }.get(kind, set())
    _only(raw, {"type", *fields}, f"{where} signedIdentity", path)
    for f in fields:
        if not isinstance(raw.get(f), str) or not raw[f]:
            raise ConfigFileError(f"{where}: signedIdentity {kind} needs {f}", path)
    identity = SignedIdentity(
        type=kind,
        docker_reference=raw.get("dockerReference", ""),
        docker_repository=raw.get("dockerRepository", ""),
        prefix=raw.get("prefix", ""),
        signed_prefix=raw.get("signedPrefix", ""),
    )
    try:
        if identity.docker_reference:
            ref = parse_reference(identity.docker_reference)
            if not (ref.tag or ref.digest):
                raise ConfigFileError(f"{where}: dockerReference needs a tag or digest", path)
        if identity.docker_repository:
            parse_reference(identity.docker_repository)
    except InvalidReferenceError as err:
        raise ConfigFileError(f"{where}: {err}", path) from err
    return identity


def _requirement(raw: Any, where: str, path: str | None, base: Path | None) -> Requirement:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise ConfigFileError(f"{where}: each requirement is an object with a type", path)
    kind = raw["type"]
    if kind == "insecureAcceptAnything":
        _only(raw, {"type"}, f"{where} {kind}", path)
        return AcceptAnything()
    if kind == "reject":
        _only(raw, {"type"}, f"{where} {kind}", path)
        return Reject()
    from ociimage._signed import SignedBy, SigstoreSigned, UnknownRequirement

    if kind == "sigstoreSigned":
        allowed = {
            "type",
            "keyPath",
            "keyPaths",
            "keyData",
            "keyDatas",
            "fulcio",
            "rekorPublicKeyPath",
            "rekorPublicKeyPaths",
            "rekorPublicKeyData",
            "rekorPublicKeyDatas",
            "signedIdentity",
            "pki",
        }
        _only(raw, allowed, f"{where} {kind}", path)
        keys = read_keys(raw, where, path, base)
        trust_roots = [
            n
            for n, given in (("keys", keys), ("fulcio", "fulcio" in raw), ("pki", "pki" in raw))
            if given
        ]
        if not trust_roots:
            raise ConfigFileError(f"{where}: sigstoreSigned needs keys or fulcio", path)
        if len(trust_roots) > 1:
            raise ConfigFileError(
                f"{where}: sigstoreSigned takes only one of {', '.join(trust_roots)}", path
            )
        rekor_keys = read_keys(raw, where, path, base, "rekorPublicKey")
        if "fulcio" in raw and not rekor_keys:
            raise ConfigFileError(
                f"{where}: sigstoreSigned with fulcio needs rekorPublicKeyPath or "
                "rekorPublicKeyData (keyless signatures are dated by Rekor)",
                path,
            )
        pki = raw.get("pki")
        return SigstoreSigned(
            keys=keys,
            fulcio=read_fulcio(raw["fulcio"], where, path, base) if "fulcio" in raw else None,
            rekor_keys=rekor_keys,
            pki=pki if isinstance(pki, dict) else ({} if "pki" in raw else None),
            signed_identity=_identity(raw.get("signedIdentity"), where, path),
        )
    if kind == "signedBy":
        _only(
            raw,
            {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"},
            f"{where} {kind}",
            path,
        )
        key_type = raw.get("keyType", "")
        if key_type != "GPGKeys":
            raise ConfigFileError(f"{where}: signedBy keyType {key_type!r} is unknown", path)
        gpg_keys = read_keys(raw, where, path, base)
        if not gpg_keys:
            raise ConfigFileError(f"{where}: signedBy needs keyPath, keyPaths or keyData", path)
        return SignedBy(
            key_type=key_type,
            keys=gpg_keys,
            signed_identity=_identity(raw.get("signedIdentity"), where, path),
        )
    return UnknownRequirement(type=kind, raw=dict(raw))


def load_policy(path: str | Path = DEFAULT_POLICY) -> Policy:
    """Read and parse a policy file (a missing file is an error: pulls must not fail open)."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as err:
        raise ConfigFileError(f"cannot read policy: {err}", str(p)) from err
    return Policy.parse(text, str(p), base=p.parent)


def __getattr__(name: str) -> Any:
    if name in _SIGNED:
        from ociimage import _signed

        return getattr(_signed, name)
    raise AttributeError(f"module 'ociimage.policy' has no attribute {name!r}")
