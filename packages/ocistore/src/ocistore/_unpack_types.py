"""The options and result of :func:`ocistore.unpack.unpack_layer`, apart from the unpacker
itself: a store holds its options from the start, while the tar reader and the
decompressors (zstandard, gzip) load with the first layer unpacked."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["IDMapping", "UnpackLimits", "UnpackOptions", "UnpackResult"]


@dataclass(frozen=True, kw_only=True)
class IDMapping:
    """``size`` ids from ``container_id`` on map to ``host_id`` on (as in /proc/PID/uid_map)."""

    container_id: int
    host_id: int
    size: int


@dataclass(frozen=True, kw_only=True)
class UnpackLimits:
    """Ceilings on what one hostile layer can cost (each documented in docs/security.md).

    ``max_bytes``: the apparent size the layer expands to, i.e. the uncompressed tar
    stream plus the holes of sparse files (holes stay holes on disk, but a copy may fill
    them). ``max_entries``: tar entries. ``max_header_bytes``: one entry's metadata (PAX
    extended headers, GNU long names, sparse maps) and all global PAX headers; checked
    before the payload is read. ``max_depth``: path components of any entry name or
    link target.
    """

    max_bytes: int = 64 << 30
    max_entries: int = 2_000_000
    max_header_bytes: int = 1 << 20
    max_depth: int = 256


@dataclass(frozen=True, kw_only=True)
class UnpackOptions:
    """How to unpack: limits, id maps for user-namespaced containers, device policy.

    ``allow_devices`` defaults to whether we run as root; without it device nodes in
    a layer are skipped with a warning (never created), as rootless storage does.
    """

    limits: UnpackLimits = field(default_factory=UnpackLimits)
    uid_map: Sequence[IDMapping] = ()
    gid_map: Sequence[IDMapping] = ()
    allow_devices: bool = field(default_factory=lambda: os.geteuid() == 0)


@dataclass(frozen=True, kw_only=True)
class UnpackResult:
    """What an unpack produced: the diff_id, uncompressed size and entry count."""

    diff_id: str
    size: int
    entries: int
