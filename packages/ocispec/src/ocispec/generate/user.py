"""Resolving ``user``, ``user:group``, numeric ids and supplementary groups in a rootfs.

The rules are runc's (``GetExecUser``) with Kubernetes' supplemental groups:

* ``name`` is looked up in the rootfs's ``/etc/passwd``; a numeric uid is used as it is and,
  if passwd has an entry for it, that entry gives the primary group and home;
* ``:group`` (name via ``/etc/group``, or numeric) replaces the primary group, and then
  ``/etc/group`` memberships are not added (an explicit group takes precedence);
* otherwise the groups listing the user's name as a member become supplementary groups,
  unless the policy is :attr:`SupplementalGroupsPolicy.STRICT`;
* a ``primary_gid`` (the CRI's ``run_as_group``) also replaces the primary group, but,
  unlike ``:group``, keeps the ``/etc/group`` memberships of the user (as CRI-O and
  containerd compute them from the user alone);
* the pod's supplemental groups (and fsGroup) are always added; the primary gid is listed
  first in ``additional_gids``, as containerd does.

Files are read with :func:`read_file_in_root`, so a symlinked ``/etc/passwd`` never
leads outside the rootfs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ocispec.errors import UserResolutionError
from ocispec.generate._rootfs import read_file_in_root

__all__ = [
    "GroupEntry",
    "PasswdEntry",
    "ResolvedUser",
    "SupplementalGroupsPolicy",
    "parse_group",
    "parse_passwd",
    "resolve_user",
]

_MAX_ID = 2**32 - 2


class SupplementalGroupsPolicy(StrEnum):
    """Kubernetes' ``supplementalGroupsPolicy``."""

    #: Groups from the image's /etc/group are merged with the pod's supplemental groups.
    MERGE = "Merge"
    #: Only the primary group and the pod's supplemental groups (and fsGroup).
    STRICT = "Strict"


@dataclass(frozen=True, kw_only=True)
class PasswdEntry:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str = ""


@dataclass(frozen=True, kw_only=True)
class GroupEntry:
    """One line of /etc/group."""

    name: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ResolvedUser:
    """The ids a container process runs with; ``username`` is empty for unknown numeric uids."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str
    username: str = ""


def _parse_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def parse_passwd(text: str) -> list[PasswdEntry]:
    """The well-formed entries of a passwd file; comments and malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 4:
            continue
        uid, gid = _parse_id(parts[2]), _parse_id(parts[3])
        if uid is None or gid is None or not parts[0]:
            continue
        home = parts[5] if len(parts) > 5 else ""
        shell = parts[6] if len(parts) > 6 else ""
        out.append(PasswdEntry(name=parts[0], uid=uid, gid=gid, home=home, shell=shell))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    """The well-formed entries of a group file; comments and malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 3:
            continue
        gid = _parse_id(parts[2])
        if gid is None or not parts[0]:
            continue
        members = tuple(m for m in parts[3].split(",") if m) if len(parts) > 3 else ()
        out.append(GroupEntry(name=parts[0], gid=gid, members=members))
    return out


def _read(rootfs: str | os.PathLike[str], path: str) -> str:
    try:
        data = read_file_in_root(rootfs, path)
    except OSError as err:
        raise UserResolutionError(f"cannot read {path} in the container rootfs: {err}") from err
    return data.decode("utf-8", "replace") if data is not None else ""


def _dedupe(ids: Sequence[int]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return tuple(seen)


def resolve_user(
    rootfs: str | os.PathLike[str] | None,
    user: str,
    *,
    supplemental_groups: Sequence[int] = (),
    policy: SupplementalGroupsPolicy = SupplementalGroupsPolicy.MERGE,
    primary_gid: int | None = None,
    passwd: Sequence[PasswdEntry] | None = None,
    group: Sequence[GroupEntry] | None = None,
) -> ResolvedUser:
    """Resolve ``user`` (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``...).

    The empty string means root. ``primary_gid`` overrides the primary group after the
    memberships are found (it may not be combined with ``:group``). ``passwd``/``group``
    entries may be given instead of reading them from ``rootfs`` (None: read from the
    rootfs; a missing file is empty).
    Raises :class:`UserResolutionError` for unknown names or malformed ids.
    """
    for g in supplemental_groups:
        if not 0 <= g <= _MAX_ID:
            raise UserResolutionError(f"supplemental group {g} is out of range")
    user_part, sep, group_part = user.partition(":")
    if sep and not group_part:
        raise UserResolutionError(f"invalid user {user!r}: empty group")
    if primary_gid is not None:
        if group_part:
            raise UserResolutionError(f"user {user!r} names a group and a primary gid is given")
        if not 0 <= primary_gid <= _MAX_ID:
            raise UserResolutionError(f"primary group {primary_gid} is out of range")
    if passwd is None:
        passwd = parse_passwd(_read(rootfs, "/etc/passwd")) if rootfs is not None else []
    if group is None:
        group = parse_group(_read(rootfs, "/etc/group")) if rootfs is not None else []

    entry: PasswdEntry | None = None
    if not user_part:
        uid = 0
        entry = next((p for p in passwd if p.uid == 0), None)
    elif (numeric := _parse_id(user_part)) is not None:
        uid = numeric
        entry = next((p for p in passwd if p.uid == uid), None)
    else:
        if user_part.isdigit() or user_part.lstrip("-").isdigit():
            raise UserResolutionError(f"invalid user {user!r}: uid out of range")
        entry = next((p for p in passwd if p.name == user_part), None)
        if entry is None:
            raise UserResolutionError(
                f"unable to find user {user_part}: no matching entries in passwd file"
            )
        uid = entry.uid
    gid = entry.gid if entry is not None else 0
    home = entry.home if entry is not None and entry.home else "/"
    username = entry.name if entry is not None else ""

    if group_part:
        numeric_gid = _parse_id(group_part)
        if numeric_gid is not None:
            gid = numeric_gid
        elif group_part.isdigit() or group_part.lstrip("-").isdigit():
            raise UserResolutionError(f"invalid group {group_part!r}: gid out of range")
        else:
            found = next((g for g in group if g.name == group_part), None)
            if found is None:
                raise UserResolutionError(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid = found.gid

    extra: list[int] = []
    if not group_part and policy is SupplementalGroupsPolicy.MERGE and username:
        extra = [g.gid for g in group if username in g.members]
    if primary_gid is not None:
        gid = primary_gid
    additional = _dedupe([gid, *extra, *supplemental_groups])
    return ResolvedUser(uid=uid, gid=gid, additional_gids=additional, home=home, username=username)
