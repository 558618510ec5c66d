"""Platforms (os, architecture, variant, os.version, os.features) and matching them.

Normalization and the compatibility rules follow containerd's ``platforms`` package:
``x86_64`` is ``amd64``, ``aarch64`` is ``arm64``, an ``arm64`` host also runs
``arm/v7``..``v5`` images, an ``amd64`` host runs ``386``, a ``v7`` ARM runs ``v6`` and
``v5``. A candidate matches a wanted platform when the OS is the same, its
architecture/variant is in the wanted platform's compatibility list, its ``os.version``
(when both sides give one) agrees (on Windows: the same major.minor.build), and every
``os.features`` it requires is offered by the wanted platform.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TypeVar

from ocispec._model import JSONModel, jfield, model
from ocispec.errors import PlatformError

__all__ = ["Platform", "PlatformMatcher", "host_platform"]

_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7", "amd64": "v1"}


def _normalize_os(os_name: str) -> str:
    os_name = os_name.strip().lower()
    return "darwin" if os_name == "macos" else os_name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch = arch.strip().lower()
    variant = variant.strip().lower()
    if arch in ("i386", "i486", "i586", "i686", "x86"):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        if variant in ("", "1", "v1"):
            return "amd64", ""
        return "amd64", variant if variant.startswith("v") else f"v{variant}"
    if arch in ("aarch64", "arm64"):
        if variant in ("", "8", "v8", "v8.0"):
            return "arm64", ""
        return "arm64", variant if variant.startswith("v") else f"v{variant}"
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch in ("arm", "armv7l", "armv7"):
        if arch != "arm":
            return "arm", "v7"
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", f"v{variant}"
        return "arm", variant
    if arch == "armv6l":
        return "arm", "v6"
    return arch, variant


@model
class Platform(JSONModel):
    """The platform an image runs on, as in an index entry or an image config.

    ``str(p)`` is the ``os/arch[/variant]`` specifier; :meth:`parse` reads one.
    """

    architecture: str = jfield("architecture", omitempty=False)
    os: str = jfield("os", omitempty=False)
    os_version: str = jfield("os.version", default="")
    os_features: Sequence[str] = jfield("os.features", default=())
    variant: str = jfield("variant", default="")

    @classmethod
    def parse(cls, specifier: str) -> Platform:
        """Parse ``os/arch[/variant]`` (``linux/arm64/v8``); a lone arch means Linux.

        The result is normalized (``linux/x86_64`` gives ``linux/amd64``).
        """
        parts = specifier.strip().split("/")
        if not specifier.strip() or len(parts) > 3 or any(not p for p in parts):
            raise PlatformError(f"invalid platform specifier {specifier!r}")
        if len(parts) == 1:
            # "amd64" alone names an architecture on Linux, "linux" alone the host arch.
            known_os = {"linux", "windows", "darwin", "freebsd", "macos"}
            if parts[0].lower() in known_os:
                host = host_platform()
                return cls(
                    os=parts[0], architecture=host.architecture, variant=host.variant
                ).normalized()
            return cls(os="linux", architecture=parts[0]).normalized()
        variant = parts[2] if len(parts) == 3 else ""
        return cls(os=parts[0], architecture=parts[1], variant=variant).normalized()

    def normalized(self) -> Platform:
        """The same platform in canonical spelling (see the module docs)."""
        arch, variant = _normalize_arch(self.architecture, self.variant)
        return self.replace(os=_normalize_os(self.os), architecture=arch, variant=variant)

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


def host_platform() -> Platform:
    """The platform of the machine running this code (Linux assumed for the OS)."""
    uname = os.uname()  # what platform.system() and .machine() read, without importing it
    system = uname.sysname.lower() or "linux"
    return Platform(os=system, architecture=uname.machine or "amd64").normalized()


def _variant_number(variant: str) -> int | None:
    v = variant[1:] if variant.startswith("v") else variant
    head = v.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _compatible(arch: str, variant: str) -> list[tuple[str, str]]:
    """(arch, variant) pairs a host of ``arch/variant`` runs, best first; variants explicit."""
    full = variant or _DEFAULT_VARIANT.get(arch, "")
    n = _variant_number(full)
    if arch == "amd64":
        top = n if n is not None else 1
        return [("amd64", f"v{i}") for i in range(top, 0, -1)] + [("386", "")]
    if arch == "arm64":
        top = n if n is not None else 8
        out = [("arm64", f"v{i}") for i in range(top, 7, -1)] or [("arm64", f"v{top}")]
        return [*out, ("arm", "v8"), ("arm", "v7"), ("arm", "v6"), ("arm", "v5")]
    if arch == "arm":
        top = n if n is not None else 7
        return [("arm", f"v{i}") for i in range(top, 4, -1)]
    return [(arch, full)]


def _windows_build(version: str) -> str:
    return ".".join(version.split(".")[:3])


P = TypeVar("P")


class PlatformMatcher:
    """Decides which platforms a host (the *wanted* platform) can run, and which is best.

    ``strict=True`` accepts only the same architecture and variant (containerd's ``Only``
    without the compatibility fallbacks).
    """

    def __init__(self, wanted: Platform | str, *, strict: bool = False) -> None:
        self.wanted = (Platform.parse(wanted) if isinstance(wanted, str) else wanted).normalized()
        arch, variant = self.wanted.architecture, self.wanted.variant
        compat = _compatible(arch, variant)
        self._order = compat[:1] if strict else compat

    def _key(self, candidate: Platform) -> tuple[str, str]:
        c = candidate.normalized()
        return c.architecture, c.variant or _DEFAULT_VARIANT.get(c.architecture, "")

    def rank(self, candidate: Platform) -> int | None:
        """Position of ``candidate`` in the preference order (0 is best), None for no match."""
        c = candidate.normalized()
        w = self.wanted
        if c.os != w.os:
            return None
        try:
            position = self._order.index(self._key(c))
        except ValueError:
            return None
        if w.os_version and c.os_version:
            if w.os == "windows":
                if _windows_build(w.os_version) != _windows_build(c.os_version):
                    return None
            elif w.os_version != c.os_version:
                return None
        if not set(c.os_features) <= set(w.os_features):
            return None
        # Among equal arch/variant, an exact os.version beats an unspecified one.
        exact_version = bool(w.os_version) and c.os_version == w.os_version
        return position * 2 + (0 if exact_version or not w.os_version else 1)

    def match(self, candidate: Platform) -> bool:
        """Whether the wanted platform can run ``candidate``."""
        return self.rank(candidate) is not None

    def less(self, a: Platform, b: Platform) -> bool:
        """Whether ``a`` is preferred over ``b`` (a non-match is never preferred)."""
        ra, rb = self.rank(a), self.rank(b)
        if ra is None:
            return False
        return rb is None or ra < rb

    def select(self, items: Iterable[P]) -> list[P]:
        """The matching items, best first: :class:`Platform` objects or things with ``.platform``.

        Items with ``platform`` set to None (index entries without a platform) are skipped.
        """
        scored: list[tuple[int, int, P]] = []
        for i, item in enumerate(items):
            plat = item if isinstance(item, Platform) else getattr(item, "platform", None)
            if plat is None:
                continue
            r = self.rank(plat)
            if r is not None:
                scored.append((r, i, item))
        scored.sort(key=lambda t: (t[0], t[1]))
        return [item for _, _, item in scored]
