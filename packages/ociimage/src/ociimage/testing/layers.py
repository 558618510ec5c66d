"""Deterministic OCI layer tarballs built in Python, for tests.

A layer is described as a list of :class:`Entry` values (files, directories,
symlinks, hard links, whiteouts and opaque markers) and packed by
:func:`build_layer` into a gzip-compressed tar whose bytes depend only on the
entries: entries are sorted by path, missing parent directories are added, every
mtime is fixed, owners default to 0:0 with empty user/group names, and the gzip
header carries no name and a zero timestamp. Building the same entries twice gives
the same digest.

:func:`merge_layers` applies layers on top of each other with the OCI whiteout
rules (``.wh.NAME`` deletes NAME from the layers below, ``.wh..wh..opq`` hides
everything below in its directory), which is how the test images compute the file
tree a correct unpacker must produce.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = [
    "FIXED_MTIME",
    "LAYER_MEDIA_TYPE",
    "OPAQUE_MARKER",
    "WHITEOUT_PREFIX",
    "Entry",
    "EntryKind",
    "Layer",
    "build_layer",
    "directory",
    "file",
    "hardlink",
    "merge_layers",
    "opaque",
    "sha256_digest",
    "symlink",
    "whiteout",
]

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
#: 2024-01-01T00:00:00Z, the mtime of every entry unless one is given.
FIXED_MTIME = 1_704_067_200

EntryKind = Literal["file", "dir", "symlink", "hardlink"]


def sha256_digest(data: bytes) -> str:
    """The OCI digest string (``sha256:<hex>``) of *data*."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _clean(path: str) -> str:
    """Normalise a layer path to the relative form used in the tar ("bin/sh")."""
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    if cleaned in ("", "."):
        raise ValueError(f"not a usable layer path: {path!r}")
    return cleaned


@dataclass(frozen=True)
class Entry:
    """One tar member of a layer. Build them with :func:`file`, :func:`directory`, etc."""

    path: str
    kind: EntryKind
    mode: int
    data: bytes = field(default=b"", repr=False)
    target: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = FIXED_MTIME

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def is_whiteout(self) -> bool:
        return self.name.startswith(WHITEOUT_PREFIX)


def file(path: str, data: bytes | str, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    """A regular file; *data* given as ``str`` is UTF-8 encoded."""
    if isinstance(data, str):
        data = data.encode()
    return Entry(_clean(path), "file", mode, data=data, uid=uid, gid=gid)


def directory(path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory."""
    return Entry(_clean(path), "dir", mode, uid=uid, gid=gid)


def symlink(path: str, target: str, *, uid: int = 0, gid: int = 0) -> Entry:
    """A symbolic link; *target* is stored as given (relative or absolute)."""
    return Entry(_clean(path), "symlink", 0o777, target=target, uid=uid, gid=gid)


def hardlink(path: str, target: str) -> Entry:
    """A hard link to *target*, another path in the same layer."""
    return Entry(_clean(path), "hardlink", 0o644, target=_clean(target))


def whiteout(path: str) -> Entry:
    """The marker that deletes *path* (file or whole directory) from the layers below."""
    cleaned = _clean(path)
    parent, name = posixpath.split(cleaned)
    return Entry(posixpath.join(parent, WHITEOUT_PREFIX + name), "file", 0o644)


def opaque(path: str) -> Entry:
    """The marker that makes directory *path* opaque: nothing below this layer shows in it."""
    return Entry(posixpath.join(_clean(path), OPAQUE_MARKER), "file", 0o644)


@dataclass(frozen=True)
class Layer:
    """A built layer: the compressed blob, its digest and size, and the tar's diff_id."""

    data: bytes = field(repr=False)
    digest: str
    size: int
    diff_id: str
    entries: tuple[Entry, ...] = field(repr=False)
    media_type: str = LAYER_MEDIA_TYPE

    @property
    def tar(self) -> bytes:
        """The uncompressed tar stream (whose sha256 is :attr:`diff_id`)."""
        return gzip.decompress(self.data)

    @property
    def paths(self) -> tuple[str, ...]:
        """Member paths in tar order."""
        return tuple(e.path for e in self.entries)

    def descriptor(self) -> dict[str, object]:
        """The OCI descriptor of this layer, as a manifest lists it."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def _with_parents(entries: Iterable[Entry]) -> list[Entry]:
    by_path: dict[str, Entry] = {}
    for entry in entries:
        if entry.path in by_path:
            raise ValueError(f"duplicate layer path: {entry.path}")
        by_path[entry.path] = entry
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = directory(parent)
            parent = posixpath.dirname(parent)
    for entry in by_path.values():
        if entry.kind == "hardlink" and entry.target not in by_path:
            raise ValueError(f"hard link {entry.path} points outside the layer: {entry.target}")
    return [by_path[p] for p in sorted(by_path)]


def _tarinfo(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind == "dir" else ""))
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = entry.mtime
    if entry.kind == "file":
        info.type = tarfile.REGTYPE
        info.size = len(entry.data)
    elif entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.type = tarfile.LNKTYPE
        info.linkname = entry.target
    return info


def build_layer(entries: Iterable[Entry], *, add_parents: bool = True) -> Layer:
    """Pack *entries* into a deterministic gzip-compressed tar layer.

    Entries are sorted by path (so a directory precedes its contents); with
    *add_parents* every missing parent directory is added as 0755 root:root.
    """
    ordered = _with_parents(entries) if add_parents else sorted(entries, key=lambda e: e.path)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in ordered:
            info = _tarinfo(entry)
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    tar_bytes = raw.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
        gz.write(tar_bytes)
    data = compressed.getvalue()
    return Layer(
        data=data,
        digest=sha256_digest(data),
        size=len(data),
        diff_id=sha256_digest(tar_bytes),
        entries=tuple(ordered),
    )


def merge_layers(layers: Sequence[Layer | Sequence[Entry]]) -> Mapping[str, Entry]:
    """The file tree that results from applying *layers* bottom to top.

    Implements the OCI rules: within each layer the whiteouts and opaque markers
    act on the layers below only, then the layer's own entries are added. The
    markers themselves never appear in the result. Keys are relative paths.
    """
    tree: dict[str, Entry] = {}

    def remove(path: str) -> None:
        prefix = path + "/"
        for key in [k for k in tree if k == path or k.startswith(prefix)]:
            del tree[key]

    for layer in layers:
        entries = layer.entries if isinstance(layer, Layer) else tuple(layer)
        for entry in entries:
            parent = posixpath.dirname(entry.path)
            if entry.name == OPAQUE_MARKER:
                prefix = parent + "/" if parent else ""
                for key in [k for k in tree if k.startswith(prefix) and k != parent]:
                    del tree[key]
            elif entry.is_whiteout:
                remove(posixpath.join(parent, entry.name[len(WHITEOUT_PREFIX) :]))
        for entry in entries:
            if entry.is_whiteout:
                continue
            if entry.kind != "dir":
                remove(entry.path)  # a file replaces whatever was there, dir and all
            elif entry.path in tree and tree[entry.path].kind != "dir":
                del tree[entry.path]
            tree[entry.path] = entry
    return MappingProxyType(dict(sorted(tree.items())))
