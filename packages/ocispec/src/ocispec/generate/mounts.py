"""Container mounts beyond the defaults: binds with propagation, tmpfs, image volumes.

Propagation follows Kubernetes' ``mountPropagation``: ``private`` (None), ``rslave``
(HostToContainer: host mounts appear in the container) and ``rshared`` (Bidirectional:
also the other way round). The rootfs needs a matching propagation, which the runtime
spec writes as ``slave`` or ``shared`` (the schema's values; runc applies them to ``/``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ocispec.errors import InvalidArgumentError
from ocispec.runtime import Mount

__all__ = [
    "BindMount",
    "ImageVolumeMode",
    "MountPropagation",
    "TmpfsMount",
    "build_mounts",
    "image_volume_mounts",
]


class MountPropagation(StrEnum):
    """Propagation of a bind mount (the values are the mount options written)."""

    PRIVATE = "rprivate"
    HOST_TO_CONTAINER = "rslave"
    BIDIRECTIONAL = "rshared"


class ImageVolumeMode(StrEnum):
    """What to do with the image config's ``Volumes`` that no mount covers (as CRI-O)."""

    #: Nothing: the directory of the image, if any, is used as it is.
    IGNORE = "ignore"
    #: A fresh tmpfs at each volume path.
    TMPFS = "tmpfs"
    #: A bind of a fresh host directory (under ``image_volume_dir``) at each volume path.
    BIND = "bind"


@dataclass(frozen=True, kw_only=True)
class BindMount:
    """A host path bound into the container."""

    source: str
    destination: str
    readonly: bool = False
    #: Make every submount read-only too (``rro``, Linux >= 5.12); implies ``readonly``
    #: and needs ``PRIVATE`` propagation (a submount propagated in later would be writable).
    recursive_readonly: bool = False
    propagation: MountPropagation = MountPropagation.PRIVATE
    #: ``rbind`` (submounts included) or ``bind``.
    recursive: bool = True
    #: More mount options, written as given (``nosuid``, ``noexec``...).
    options: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class TmpfsMount:
    """A tmpfs in the container; ``size`` in bytes, ``mode`` such as ``0o1777``."""

    destination: str
    size: int | None = None
    mode: int | None = None
    readonly: bool = False
    options: Sequence[str] = ("nosuid", "nodev")


def _destination(path: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgumentError(f"mount destination {path!r} is not absolute")
    if "\x00" in path:
        raise InvalidArgumentError(f"mount destination {path!r} contains NUL")
    return posixpath.normpath(path)


def _bind(m: BindMount, check_source: bool) -> Mount:
    if not m.source.startswith("/"):
        raise InvalidArgumentError(f"bind mount source {m.source!r} is not absolute")
    if check_source and not os.path.lexists(m.source):
        raise InvalidArgumentError(f"bind mount source {m.source!r} does not exist")
    if m.recursive_readonly and m.propagation is not MountPropagation.PRIVATE:
        raise InvalidArgumentError(
            f"recursive read-only mount at {m.destination!r} needs private propagation,"
            f" not {m.propagation.value}"
        )
    opts = ["rbind" if m.recursive else "bind", str(m.propagation)]
    if m.recursive_readonly:
        opts.append("rro")
    elif m.readonly:
        opts.append("ro")
    opts.extend(o for o in m.options if o not in opts)
    return Mount(
        destination=_destination(m.destination), type="bind", source=m.source, options=opts
    )


def _tmpfs(m: TmpfsMount) -> Mount:
    opts = list(m.options)
    if m.size is not None:
        if m.size < 0:
            raise InvalidArgumentError(f"tmpfs size {m.size} is negative")
        opts.append(f"size={m.size}")
    if m.mode is not None:
        opts.append(f"mode={m.mode:o}")
    if m.readonly:
        opts.append("ro")
    return Mount(
        destination=_destination(m.destination), type="tmpfs", source="tmpfs", options=opts
    )


def image_volume_mounts(
    volumes: Iterable[str],
    mode: ImageVolumeMode,
    *,
    covered: Iterable[str] = (),
    volume_dir: str | None = None,
) -> tuple[Mount, ...]:
    """Mounts for image ``Volumes`` not ``covered`` by another mount.

    In BIND mode a directory per volume is created under ``volume_dir`` (which must be
    given) and bound read-write.
    """
    if mode is ImageVolumeMode.IGNORE:
        return ()
    taken = {posixpath.normpath(c) for c in covered}
    out = []
    for vol in sorted(volumes):
        dest = _destination(vol)
        if dest in taken:
            continue
        if mode is ImageVolumeMode.TMPFS:
            out.append(
                _tmpfs(TmpfsMount(destination=dest, mode=0o755, options=("nosuid", "nodev")))
            )
        else:
            if volume_dir is None:
                raise InvalidArgumentError("image volumes in bind mode need a volume directory")
            host = Path(volume_dir, dest.strip("/").replace("/", "_") or "root")
            host.mkdir(mode=0o755, parents=True, exist_ok=True)
            out.append(_bind(BindMount(source=str(host), destination=dest), check_source=False))
    return tuple(out)


def build_mounts(
    defaults: Sequence[Mount],
    mounts: Sequence[BindMount | TmpfsMount | Mount],
    *,
    check_sources: bool = True,
) -> tuple[tuple[Mount, ...], str]:
    """Defaults overlaid with the caller's mounts, and the rootfs propagation they need.

    A caller's mount replaces a default with the same destination in place; the others
    follow, parents before children. Two caller mounts with one destination are an
    error. The propagation is ``""`` (runc's default, slave), ``"slave"`` or ``"shared"``.
    """
    converted: list[Mount] = []
    propagation = ""
    seen: set[str] = set()
    for m in mounts:
        if isinstance(m, BindMount):
            spec = _bind(m, check_sources)
            if m.propagation is MountPropagation.BIDIRECTIONAL:
                propagation = "shared"
            elif m.propagation is MountPropagation.HOST_TO_CONTAINER and not propagation:
                propagation = "slave"
        elif isinstance(m, TmpfsMount):
            spec = _tmpfs(m)
        else:
            spec = m.replace(destination=_destination(m.destination))
        if spec.destination in seen:
            raise InvalidArgumentError(f"duplicate mount destination {spec.destination!r}")
        seen.add(spec.destination)
        converted.append(spec)
    by_dest = {m.destination: m for m in converted}
    result = [by_dest.pop(d.destination, d) for d in defaults]
    rest = [m for m in converted if m.destination in by_dest]
    rest.sort(key=lambda m: len([p for p in m.destination.split("/") if p]))
    return (*result, *rest), propagation
