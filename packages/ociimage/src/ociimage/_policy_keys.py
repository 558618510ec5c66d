"""Key material named by policy.json: key files or base64 data, and Fulcio CAs.

Relative paths resolve against the policy file's directory; every failure is a
:class:`ConfigFileError` naming the requirement.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ociimage.errors import ConfigFileError

if TYPE_CHECKING:  # fulcio imports cryptography: only policies with sigstoreSigned need it
    from ociimage.fulcio import FulcioTrust

__all__ = ["read_fulcio", "read_keys"]


def _read_key(value: Any, where: str, path: str | None, base: Path | None) -> bytes:
    if not isinstance(value, str) or not value:
        raise ConfigFileError(f"{where}: key paths must be non-empty strings", path)
    key_path = Path(value)
    if not key_path.is_absolute() and base is not None:
        key_path = base / key_path
    try:
        return key_path.read_bytes()
    except OSError as err:
        raise ConfigFileError(f"{where}: cannot read key {value}: {err}", path) from err


def read_keys(
    raw: Mapping[str, Any],
    where: str,
    path: str | None,
    base: Path | None,
    prefix: str = "key",
) -> tuple[bytes, ...]:
    """The keys given as ``<prefix>Path``, ``<prefix>Paths``, ``<prefix>Data`` or
    ``<prefix>Datas`` (only one of them)."""
    p, ps, d, ds = (prefix + suffix for suffix in ("Path", "Paths", "Data", "Datas"))
    given = [k for k in (p, ps, d, ds) if k in raw]
    if len(given) > 1:
        raise ConfigFileError(f"{where}: give only one of {', '.join(given)}", path)
    if p in raw:
        return (_read_key(raw[p], where, path, base),)
    if ps in raw:
        paths = raw[ps]
        if not isinstance(paths, list) or not paths:
            raise ConfigFileError(f"{where}: {ps} must be a non-empty list", path)
        return tuple(_read_key(x, where, path, base) for x in paths)
    datas = [raw[d]] if d in raw else raw.get(ds, [])
    if not isinstance(datas, list):
        raise ConfigFileError(f"{where}: {ds} must be a list", path)
    out = []
    for data in datas:
        try:
            out.append(base64.b64decode(data, validate=True))
        except (binascii.Error, TypeError) as err:
            raise ConfigFileError(f"{where}: {d} is not base64", path) from err
    return tuple(out)


def read_fulcio(raw: Any, where: str, path: str | None, base: Path | None) -> FulcioTrust:
    """policy.json's ``fulcio`` object: one CA (caPath or caData) and the OIDC identity."""
    # cryptography is imported only by a policy that asks for keyless signatures
    from ociimage.fulcio import FulcioTrust, load_certificates

    if not isinstance(raw, dict):
        raise ConfigFileError(f"{where}: fulcio must be an object", path)
    unknown = set(raw) - {"caPath", "caData", "oidcIssuer", "subjectEmail"}
    if unknown:
        raise ConfigFileError(f"unknown fields {sorted(unknown)} in {where} fulcio", path)
    if ("caPath" in raw) == ("caData" in raw):
        raise ConfigFileError(f"{where}: fulcio needs exactly one of caPath, caData", path)
    if "caPath" in raw:
        ca = _read_key(raw["caPath"], where, path, base)
    else:
        try:
            ca = base64.b64decode(raw["caData"], validate=True)
        except (binascii.Error, TypeError) as err:
            raise ConfigFileError(f"{where}: fulcio caData is not base64", path) from err
    try:
        load_certificates(ca, "fulcio CA")
    except ConfigFileError as err:
        raise ConfigFileError(f"{where}: {err}", path) from err
    for name in ("oidcIssuer", "subjectEmail"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise ConfigFileError(f"{where}: fulcio needs {name}", path)
    return FulcioTrust(
        ca_certificates=ca, oidc_issuer=raw["oidcIssuer"], subject_email=raw["subjectEmail"]
    )
