"""``registries.d`` (containers-registries.d(5)): where an image's signatures live.

YAML files in ``/etc/containers/registries.d/*.yaml`` map docker scopes (a host, a
namespace, a repository, or ``*.domain``) and ``default-docker`` to a ``lookaside`` URL
(OpenPGP "simple signing" signatures stored as
``<lookaside>/<repository path>@<alg>=<hex>/signature-<n>``) and
``use-sigstore-attachments`` (read cosign signatures from the registry). The most
specific scope wins; ``sigstore`` is the older spelling of ``lookaside``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ociimage.errors import ConfigFileError
from ociimage.reference import Reference

__all__ = ["DEFAULT_REGISTRIES_D", "RegistriesD", "SignatureStorage", "load_registries_d"]

#: The system-wide directory.
DEFAULT_REGISTRIES_D = Path("/etc/containers/registries.d")

_KEYS = {
    "lookaside",
    "lookaside-staging",
    "sigstore",
    "sigstore-staging",
    "use-sigstore-attachments",
}


@dataclass(frozen=True, kw_only=True)
class SignatureStorage:
    """Signature settings for one scope: a lookaside base URL and sigstore attachments."""

    lookaside: str = ""
    use_sigstore_attachments: bool = False

    def lookaside_url(self, reference: Reference, digest: str, index: int) -> str:
        """The URL of signature number ``index`` (from 1) of ``digest`` under ``reference``."""
        algorithm, _, encoded = digest.partition(":")
        base = self.lookaside.rstrip("/")
        return f"{base}/{reference.path}@{algorithm}={encoded}/signature-{index}"


@dataclass(frozen=True, kw_only=True)
class RegistriesD:
    """Merged registries.d configuration."""

    default: SignatureStorage = field(default_factory=SignatureStorage)
    docker: Mapping[str, SignatureStorage] = field(default_factory=dict)

    def for_reference(self, reference: Reference) -> SignatureStorage:
        """The settings of the most specific scope matching ``reference``."""
        parts = reference.name.split("/")
        for end in range(len(parts), 0, -1):
            found = self.docker.get("/".join(parts[:end]))
            if found is not None:
                return found
        host = reference.domain.rsplit(":", 1)[0]
        labels = host.split(".")
        for start in range(1, len(labels)):
            found = self.docker.get("*." + ".".join(labels[start:]))
            if found is not None:
                return found
        return self.default

    @classmethod
    def parse(cls, documents: Mapping[str, str]) -> RegistriesD:
        """Merge YAML documents (file name → text); a scope defined twice is an error."""
        import yaml  # only a pull that checks signatures reads registries.d

        default: SignatureStorage | None = None
        docker: dict[str, SignatureStorage] = {}
        for name, text in documents.items():
            try:
                doc = yaml.safe_load(text) or {}
            except yaml.YAMLError as err:
                raise ConfigFileError(f"not valid YAML: {err}", name) from err
            if not isinstance(doc, dict):
                raise ConfigFileError("a registries.d file must be a mapping", name)
            unknown = set(doc) - {"default-docker", "docker"}
            if unknown:
                raise ConfigFileError(f"unknown keys {sorted(unknown)}", name)
            if "default-docker" in doc:
                if default is not None:
                    raise ConfigFileError("default-docker is defined in more than one file", name)
                default = _storage(doc["default-docker"], "default-docker", name)
            scopes = doc.get("docker") or {}
            if not isinstance(scopes, dict):
                raise ConfigFileError("docker must be a mapping of scopes", name)
            for scope, raw in scopes.items():
                if scope in docker:
                    raise ConfigFileError(f"scope {scope!r} is defined more than once", name)
                docker[str(scope)] = _storage(raw, f"docker[{scope!r}]", name)
        return cls(default=default or SignatureStorage(), docker=docker)


def _storage(raw: Any, where: str, name: str) -> SignatureStorage:
    if raw is None:
        return SignatureStorage()
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{where} must be a mapping", name)
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigFileError(f"{where}: unknown keys {sorted(unknown)}", name)
    lookaside = raw.get("lookaside", raw.get("sigstore", ""))
    if not isinstance(lookaside, str):
        raise ConfigFileError(f"{where}: lookaside must be a URL", name)
    if lookaside and not lookaside.startswith(("file://", "http://", "https://")):
        raise ConfigFileError(f"{where}: lookaside {lookaside!r} must be file://, http(s)://", name)
    attachments = raw.get("use-sigstore-attachments", False)
    if not isinstance(attachments, bool):
        raise ConfigFileError(f"{where}: use-sigstore-attachments must be true or false", name)
    return SignatureStorage(lookaside=lookaside, use_sigstore_attachments=attachments)


def load_registries_d(directory: str | Path = DEFAULT_REGISTRIES_D) -> RegistriesD:
    """Read every ``*.yaml`` in ``directory`` (a missing directory is an empty config)."""
    path = Path(directory)
    if not path.is_dir():
        return RegistriesD()
    documents: dict[str, str] = {}
    for file in sorted(path.glob("*.yaml")):
        try:
            documents[str(file)] = file.read_text()
        except OSError as err:
            raise ConfigFileError(f"cannot read: {err}", str(file)) from err
    return RegistriesD.parse(documents)
