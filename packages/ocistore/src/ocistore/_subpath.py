"""A sub path of a mounted image, resolved as the image itself would see it.

Symbolic links are followed inside the image: an absolute target starts again at the
image's root, never at the host's. A ``..`` that would climb above the root, too many
links, or a component that is not a directory is refused. The tree is a read-only
mount of immutable layers, so what was resolved cannot change before it is used.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from pathlib import Path

from ocistore.errors import SubPathError, SubPathNotFoundError

__all__ = ["check_sub_path", "resolve_sub_path"]

#: Symbolic links followed while resolving one sub path (the kernel's limit is 40 too).
MAX_LINKS = 40


def check_sub_path(sub_path: str) -> str:
    """``sub_path`` normalised (no ``.`` or empty parts); refuses absolute paths and ``..``."""
    if "\x00" in sub_path:
        raise SubPathError(f"sub path {sub_path!r} contains NUL")
    if sub_path.startswith("/"):
        raise SubPathError(f"sub path {sub_path!r} must be relative to the image root")
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SubPathError(f"sub path {sub_path!r} must not contain '..'")
    return "/".join(parts)


def resolve_sub_path(root: Path, sub_path: str) -> str:
    """The real relative path ``sub_path`` names under ``root`` ("" is the root itself).

    The result is a directory or a regular file; raises :class:`SubPathNotFoundError`
    when a component is missing and :class:`SubPathError` when it leaves the image.
    """
    pending = deque(p for p in check_sub_path(sub_path).split("/") if p)
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":  # only a link target brings these
            if not resolved:
                raise SubPathError(f"sub path {sub_path!r} leads outside the image root")
            resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError as err:
            raise SubPathNotFoundError(
                f"sub path {sub_path!r} does not exist in the image"
                f" ({'/'.join([*resolved, part])} is missing)"
            ) from err
        except NotADirectoryError as err:
            raise SubPathNotFoundError(
                f"sub path {sub_path!r} does not exist in the image"
                f" ({'/'.join(resolved)} is not a directory)"
            ) from err
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise SubPathError(f"sub path {sub_path!r}: too many levels of symbolic links")
            target = str(candidate.readlink())
            if target.startswith("/"):
                resolved = []
            pending.extendleft(reversed(target.split("/")))
            continue
        if pending and not stat.S_ISDIR(st.st_mode):
            raise SubPathNotFoundError(
                f"sub path {sub_path!r} does not exist in the image"
                f" ({'/'.join([*resolved, part])} is not a directory)"
            )
        resolved.append(part)
    relative = "/".join(resolved)
    mode = os.lstat(root.joinpath(*resolved)).st_mode
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise SubPathError(f"sub path {sub_path!r} is neither a directory nor a regular file")
    return relative
