"""``registries.conf`` (v2, and the deprecated v1 tables): where to pull a name from.

The same files CRI-O and Podman read: ``/etc/containers/registries.conf`` then every
``registries.conf.d/*.conf`` in lexical order, later files overriding earlier ones
(search registries and ``short-name-mode`` when set, ``[[registry]]`` tables by prefix,
aliases one by one, an empty alias erasing it). A reference picks the ``[[registry]]``
with the longest matching prefix (``*.example.com`` matches subdomains); its mirrors
are tried in order, then its location. Short names resolve through ``[aliases]``, then
``unqualified-search-registries`` under ``short-name-mode``; ociimage never prompts,
so ``enforcing`` with several search registries is an error, as for any program
without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ociimage.errors import (
    BlockedRegistryError,
    ConfigFileError,
    InvalidReferenceError,
    ShortNameError,
)
from ociimage.reference import Reference, parse_reference, split_reference

__all__ = [
    "DEFAULT_REGISTRIES_CONF",
    "Mirror",
    "PullFromMirror",
    "PullSource",
    "RegistriesConfig",
    "Registry",
    "ShortNameMode",
    "ShortNameResolution",
    "load_registries_conf",
]

#: The system-wide file (its drop-in directory is the same path with ``.d``).
DEFAULT_REGISTRIES_CONF = Path("/etc/containers/registries.conf")


class ShortNameMode(StrEnum):
    """How short names resolve when no alias matches (see the module docs)."""

    ENFORCING = "enforcing"
    PERMISSIVE = "permissive"
    DISABLED = "disabled"


class PullFromMirror(StrEnum):
    """Which references a mirror serves."""

    ALL = "all"
    DIGEST_ONLY = "digest-only"
    TAG_ONLY = "tag-only"


@dataclass(frozen=True, kw_only=True)
class Mirror:
    """One ``[[registry.mirror]]`` table."""

    location: str
    insecure: bool = False
    pull_from_mirror: PullFromMirror | None = None


@dataclass(frozen=True, kw_only=True)
class Registry:
    """One ``[[registry]]`` table; ``location`` is empty for a wildcard prefix."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirror_by_digest_only: bool = False
    mirrors: tuple[Mirror, ...] = ()

    @property
    def wildcard(self) -> bool:
        """Whether the prefix is a ``*.host`` pattern."""
        return self.prefix.startswith("*.")

    def match_length(self, reference: str) -> int:
        """How much of ``reference`` this table's prefix matches; 0 for no match."""
        if self.wildcard:
            host = reference.split("/", 1)[0]
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            suffix = self.prefix[1:]  # ".example.com"
            return len(host) if hostname.endswith(suffix) and hostname != suffix[1:] else 0
        if reference == self.prefix:
            return len(self.prefix)
        if reference.startswith(self.prefix) and reference[len(self.prefix)] in "/:@":
            return len(self.prefix)
        return 0


# PullSource and ShortNameResolution are plain classes: a dataclass costs an importer
# about a millisecond (it compiles its methods), and ``ociimage pull`` imports this first.


class PullSource:
    """A physical place to fetch an image from: a mirror, or the primary location."""

    __slots__ = ("insecure", "mirror", "reference")

    def __init__(
        self, *, reference: Reference, insecure: bool = False, mirror: bool = False
    ) -> None:
        self.reference = reference
        self.insecure = insecure
        self.mirror = mirror

    def __repr__(self) -> str:
        return (
            f"PullSource(reference={self.reference!r}, insecure={self.insecure}, "
            f"mirror={self.mirror})"
        )


class ShortNameResolution:
    """The ordered candidates for a name; ``alias`` is set when an alias decided it."""

    __slots__ = ("alias", "candidates", "mode")

    def __init__(
        self,
        *,
        candidates: tuple[Reference, ...],
        alias: str = "",
        mode: ShortNameMode = ShortNameMode.PERMISSIVE,
    ) -> None:
        self.candidates = candidates
        self.alias = alias
        self.mode = mode

    def __repr__(self) -> str:
        return (
            f"ShortNameResolution(candidates={self.candidates!r}, alias={self.alias!r}, "
            f"mode={self.mode!r})"
        )


@dataclass(frozen=True, kw_only=True)
class RegistriesConfig:
    """A merged registries.conf. The empty config pulls every name from where it says."""

    unqualified_search_registries: tuple[str, ...] = ()
    short_name_mode: ShortNameMode = ShortNameMode.PERMISSIVE
    registries: tuple[Registry, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    credential_helpers: tuple[str, ...] = ()

    # -- reading -----------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> RegistriesConfig:
        """Parse one file's TOML text (v2, or v1's ``[registries.*]`` tables)."""
        return RegistriesConfig().merged(_parse_document(text, path), path)

    def merged(self, doc: Mapping[str, Any], path: str | None = None) -> RegistriesConfig:
        """This config overridden by one more (parsed, checked) drop-in document."""
        out = self
        if "unqualified-search-registries" in doc:
            out = replace(
                out, unqualified_search_registries=tuple(doc["unqualified-search-registries"])
            )
        if doc.get("short-name-mode"):
            out = replace(out, short_name_mode=ShortNameMode(doc["short-name-mode"]))
        if "credential-helpers" in doc:
            out = replace(out, credential_helpers=tuple(doc["credential-helpers"]))
        new_regs: list[Registry] = doc.get("registry", [])
        if new_regs:
            replaced = {r.prefix for r in new_regs}
            kept = [r for r in out.registries if r.prefix not in replaced]
            out = replace(out, registries=(*kept, *new_regs))
        if doc.get("aliases"):
            aliases = dict(out.aliases)
            for name, value in doc["aliases"].items():
                if value:
                    aliases[name] = value
                else:
                    aliases.pop(name, None)
            out = replace(out, aliases=aliases)
        return out

    def with_insecure(self, hosts: Iterable[str]) -> RegistriesConfig:
        """A copy where each ``host`` (a prefix) is reachable without verified TLS."""
        regs = list(self.registries)
        for host in hosts:
            for i, reg in enumerate(regs):
                if reg.prefix == host:
                    regs[i] = replace(reg, insecure=True)
                    break
            else:
                regs.append(Registry(prefix=host, location=host, insecure=True))
        return replace(self, registries=tuple(regs))

    # -- lookups -----------------------------------------------------------------------

    def find_registry(self, reference: Reference | str) -> Registry | None:
        """The ``[[registry]]`` whose prefix matches ``reference`` longest, or None."""
        text = str(reference)
        best: Registry | None = None
        best_score = (0, False)
        for reg in self.registries:
            # an exact prefix beats a wildcard matching as much of the name
            score = (reg.match_length(text), not reg.wildcard)
            if score[0] and score > best_score:
                best, best_score = reg, score
        return best

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` may be spoken to over plain HTTP or unverified TLS."""
        reg = self.find_registry(host)
        if reg is not None and reg.insecure:
            return True
        for r in self.registries:
            for m in r.mirrors:
                if m.insecure and (m.location == host or m.location.startswith(host + "/")):
                    return True
        return False

    def pull_sources(self, reference: Reference) -> list[PullSource]:
        """Where to fetch ``reference`` from, in order: usable mirrors, then the location.

        Raises :class:`BlockedRegistryError` when the matching table is ``blocked``.
        """
        reg = self.find_registry(reference)
        if reg is None:
            return [PullSource(reference=reference)]
        if reg.blocked:
            raise BlockedRegistryError(
                f"registry {reg.prefix!r} is blocked in registries.conf; refusing {reference}"
            )
        sources: list[PullSource] = []
        by_digest = bool(reference.digest)
        for mirror in reg.mirrors:
            mode = mirror.pull_from_mirror or (
                PullFromMirror.DIGEST_ONLY if reg.mirror_by_digest_only else PullFromMirror.ALL
            )
            if (mode == PullFromMirror.DIGEST_ONLY and not by_digest) or (
                mode == PullFromMirror.TAG_ONLY and by_digest
            ):
                continue
            sources.append(
                PullSource(
                    reference=_rewrite(reference, reg, mirror.location),
                    insecure=mirror.insecure,
                    mirror=True,
                )
            )
        location = reg.location or ""
        sources.append(
            PullSource(
                reference=_rewrite(reference, reg, location) if location else reference,
                insecure=reg.insecure,
            )
        )
        return sources

    def resolve(self, name: str) -> ShortNameResolution:
        """The ordered candidate references for ``name`` (qualified names give themselves).

        Raises :class:`ShortNameError` when a short name cannot be resolved.
        """
        domain, path, tag, digest = split_reference(name)
        if domain:
            return ShortNameResolution(
                candidates=(parse_reference(name),), mode=self.short_name_mode
            )
        alias = self.aliases.get(path)
        if alias:
            base = parse_reference(alias)
            return ShortNameResolution(
                candidates=(replace(base, tag=tag, digest=digest),),
                alias=alias,
                mode=self.short_name_mode,
            )
        search = self.unqualified_search_registries
        if not search:
            raise ShortNameError(
                f"short name {name!r} has no alias and no unqualified-search-registries are "
                "configured: use a fully qualified reference"
            )
        if len(search) > 1 and self.short_name_mode == ShortNameMode.ENFORCING:
            raise ShortNameError(
                f"short name {name!r} is ambiguous ({len(search)} unqualified-search-registries: "
                f"{', '.join(search)}) and short-name-mode is enforcing, which needs a terminal "
                "to prompt: use a fully qualified reference or add an alias"
            )
        candidates = tuple(parse_reference(f"{host}/{name}") for host in search)
        return ShortNameResolution(candidates=candidates, mode=self.short_name_mode)


def _rewrite(reference: Reference, reg: Registry, location: str) -> Reference:
    """``reference`` with the matched prefix replaced by ``location``."""
    text = str(reference)
    if reg.wildcard:
        host = text.split("/", 1)[0]
        rest = text[len(host) :]
    else:
        rest = text[len(reg.prefix) :]
    try:
        return parse_reference(location + rest)
    except InvalidReferenceError as err:
        raise ConfigFileError(
            f"location {location!r} of prefix {reg.prefix!r} makes an invalid reference "
            f"from {text!r}: {err}"
        ) from err


def _as_bool(value: Any, what: str, path: str | None) -> bool:
    if not isinstance(value, bool):
        raise ConfigFileError(f"{what} must be true or false, not {value!r}", path)
    return value


def _as_str_list(value: Any, what: str, path: str | None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigFileError(f"{what} must be an array of strings", path)
    return list(value)


def _check_location(value: str, what: str, path: str | None) -> str:
    try:
        split_reference(value)
    except InvalidReferenceError as err:
        raise ConfigFileError(f"{what} {value!r} is not a valid location: {err}", path) from err
    return value


def _parse_mirror(raw: Any, path: str | None, reg_prefix: str) -> Mirror:
    if not isinstance(raw, dict):
        raise ConfigFileError(f"mirror of {reg_prefix!r} must be a table", path)
    unknown = set(raw) - {"location", "insecure", "pull-from-mirror"}
    if unknown:
        raise ConfigFileError(f"unknown keys {sorted(unknown)} in a mirror of {reg_prefix!r}", path)
    location = raw.get("location", "")
    if not isinstance(location, str) or not location:
        raise ConfigFileError(f"a mirror of {reg_prefix!r} has no location", path)
    pfm = raw.get("pull-from-mirror", "")
    try:
        mode = PullFromMirror(pfm) if pfm else None
    except ValueError as err:
        raise ConfigFileError(
            f"pull-from-mirror {pfm!r} of {location!r}: want all, digest-only or tag-only", path
        ) from err
    return Mirror(
        location=_check_location(location, "mirror location", path),
        insecure=_as_bool(raw.get("insecure", False), "mirror insecure", path),
        pull_from_mirror=mode,
    )


def _parse_registry(raw: Any, path: str | None) -> Registry:
    if not isinstance(raw, dict):
        raise ConfigFileError("[[registry]] entries must be tables", path)
    known = {"prefix", "location", "insecure", "blocked", "mirror-by-digest-only", "mirror"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigFileError(f"unknown keys {sorted(unknown)} in a [[registry]] table", path)
    prefix = raw.get("prefix", "") or raw.get("location", "")
    location = raw.get("location", "")
    if not isinstance(prefix, str) or not isinstance(location, str) or not prefix:
        raise ConfigFileError("a [[registry]] table needs a prefix or a location", path)
    if prefix.startswith("*."):
        if "/" in prefix or not _valid_wildcard(prefix):
            raise ConfigFileError(f"invalid wildcard prefix {prefix!r}: want *.host", path)
        if location:
            raise ConfigFileError(f"wildcard prefix {prefix!r} cannot have a location", path)
    else:
        _check_location(prefix, "prefix", path)
        location = _check_location(location or prefix, "location", path)
    by_digest = _as_bool(raw.get("mirror-by-digest-only", False), "mirror-by-digest-only", path)
    mirrors_raw = raw.get("mirror", [])
    if not isinstance(mirrors_raw, list):
        raise ConfigFileError(f"mirror of {prefix!r} must be an array of tables", path)
    mirrors = tuple(_parse_mirror(m, path, prefix) for m in mirrors_raw)
    if by_digest and any(m.pull_from_mirror for m in mirrors):
        raise ConfigFileError(
            f"{prefix!r} sets mirror-by-digest-only and a mirror sets pull-from-mirror: "
            "use one or the other",
            path,
        )
    return Registry(
        prefix=prefix,
        location=location,
        insecure=_as_bool(raw.get("insecure", False), "insecure", path),
        blocked=_as_bool(raw.get("blocked", False), "blocked", path),
        mirror_by_digest_only=by_digest,
        mirrors=mirrors,
    )


def _valid_wildcard(prefix: str) -> bool:
    try:
        split_reference(prefix[2:] + "/x")
    except InvalidReferenceError:
        return False
    return "*" not in prefix[2:]


def _parse_v1(doc: Mapping[str, Any], path: str | None) -> dict[str, Any]:
    tables = doc["registries"]
    if not isinstance(tables, dict):
        raise ConfigFileError("[registries] must be a table", path)
    out: dict[str, Any] = {}
    regs: dict[str, dict[str, Any]] = {}
    for kind in ("search", "insecure", "block"):
        section = tables.get(kind, {})
        hosts = _as_str_list(section.get("registries", []), f"registries.{kind}", path)
        if kind == "search":
            out["unqualified-search-registries"] = hosts
            continue
        for host in hosts:
            entry = regs.setdefault(host, {"location": host})
            entry["insecure" if kind == "insecure" else "blocked"] = True
    out["registry"] = [_parse_registry(r, path) for r in regs.values()]
    return out


def _parse_document(text: str, path: str | None) -> dict[str, Any]:
    import tomllib  # only when a file exists: a node without registries.conf never needs it

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigFileError(f"not valid TOML: {err}", path) from err
    if "registries" in doc:
        if set(doc) & {"registry", "unqualified-search-registries", "aliases"}:
            raise ConfigFileError("mixes v1 [registries.*] tables with v2 settings", path)
        return _parse_v1(doc, path)
    known = {
        "unqualified-search-registries",
        "short-name-mode",
        "registry",
        "aliases",
        "credential-helpers",
        "additional-layer-store-auth-helper",
    }
    unknown = set(doc) - known
    if unknown:
        raise ConfigFileError(f"unknown top-level keys {sorted(unknown)}", path)
    out: dict[str, Any] = {}
    if "unqualified-search-registries" in doc:
        hosts = _as_str_list(
            doc["unqualified-search-registries"], "unqualified-search-registries", path
        )
        for host in hosts:
            if "/" in host:
                raise ConfigFileError(
                    f"unqualified-search-registries entry {host!r} is not a host", path
                )
        out["unqualified-search-registries"] = hosts
    if "credential-helpers" in doc:
        out["credential-helpers"] = _as_str_list(
            doc["credential-helpers"], "credential-helpers", path
        )
    mode = doc.get("short-name-mode", "")
    if mode:
        try:
            out["short-name-mode"] = ShortNameMode(mode)
        except ValueError as err:
            raise ConfigFileError(
                f"short-name-mode {mode!r}: want enforcing, permissive or disabled", path
            ) from err
    regs_raw = doc.get("registry", [])
    if not isinstance(regs_raw, list):
        raise ConfigFileError("registry must be an array of tables ([[registry]])", path)
    regs = [_parse_registry(r, path) for r in regs_raw]
    seen: set[str] = set()
    for reg in regs:
        if reg.prefix in seen:
            raise ConfigFileError(f"prefix {reg.prefix!r} appears twice", path)
        seen.add(reg.prefix)
    out["registry"] = regs
    aliases = doc.get("aliases", {})
    if not isinstance(aliases, dict):
        raise ConfigFileError("[aliases] must be a table", path)
    for name, value in aliases.items():
        _check_alias(name, value, path)
    out["aliases"] = aliases
    return out


def _check_alias(name: str, value: Any, path: str | None) -> None:
    try:
        domain, _, tag, digest = split_reference(name)
    except InvalidReferenceError as err:
        raise ConfigFileError(f"alias {name!r} is not a valid short name: {err}", path) from err
    if domain or tag or digest:
        raise ConfigFileError(f"alias {name!r} must be a short name without tag or digest", path)
    if not isinstance(value, str):
        raise ConfigFileError(f"alias {name!r} must map to a string", path)
    if not value:
        return
    try:
        vdomain, _, vtag, vdigest = split_reference(value)
    except InvalidReferenceError as err:
        raise ConfigFileError(f"alias {name!r} = {value!r} is invalid: {err}", path) from err
    if not vdomain or vtag or vdigest:
        raise ConfigFileError(
            f"alias {name!r} = {value!r} must be fully qualified, without tag or digest", path
        )


def load_registries_conf(
    path: str | Path | None = DEFAULT_REGISTRIES_CONF,
    dropin_dir: str | Path | None = None,
    *,
    extra_files: Sequence[str | Path] = (),
) -> RegistriesConfig:
    """Read ``path`` (missing is fine) and its drop-ins (``<path>.d/*.conf`` by default).

    ``path=None`` reads nothing; the result is then only the drop-ins and ``extra_files``.
    """
    config = RegistriesConfig()
    files: list[Path] = []
    if path is not None:
        files.append(Path(path))
        if dropin_dir is None:
            dropin_dir = Path(f"{path}.d")
    if dropin_dir is not None and Path(dropin_dir).is_dir():
        files.extend(sorted(Path(dropin_dir).glob("*.conf")))
    files.extend(Path(f) for f in extra_files)
    for file in files:
        try:
            text = file.read_text()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise ConfigFileError(f"cannot read: {err}", str(file)) from err
        config = config.merged(_parse_document(text, str(file)), str(file))
    return config
