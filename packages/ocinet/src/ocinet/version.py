"""CNI specification versions: parsing, ordering and what ocinet speaks."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "CURRENT_VERSION",
    "SUPPORTED_VERSIONS",
    "highest_supported",
    "parse_version",
    "version_at_least",
]

#: The spec version ocinet implements (the runtime side of CNI 1.1).
CURRENT_VERSION = "1.1.0"
#: Every version ocinet can read configurations and results of, oldest first.
SUPPORTED_VERSIONS: tuple[str, ...] = (
    "0.1.0",
    "0.2.0",
    "0.3.0",
    "0.3.1",
    "0.4.0",
    "1.0.0",
    "1.1.0",
)

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.0.0"`` -> ``(1, 0, 0)``; raises ValueError on anything else."""
    match = _VERSION_RE.match(version.strip()) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"invalid CNI version {version!r}")
    return (int(match[1]), int(match[2]), int(match[3]))


def version_at_least(version: str, reference: str) -> bool:
    """Whether ``version`` is the same as or newer than ``reference``."""
    return parse_version(version) >= parse_version(reference)


def highest_supported(versions: Iterable[str]) -> str | None:
    """The newest of ``versions`` that ocinet speaks (CNI 1.1 ``cniVersions``), or None."""
    known = [v for v in versions if isinstance(v, str) and v in SUPPORTED_VERSIONS]
    if not known:
        return None
    return max(known, key=parse_version)
