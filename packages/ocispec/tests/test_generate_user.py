"""User and group resolution: properties against an oracle, and rootfs symlink safety."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ocispec import UserResolutionError
from ocispec.generate import (
    GroupEntry,
    PasswdEntry,
    SupplementalGroupsPolicy,
    parse_group,
    parse_passwd,
    resolve_user,
)
from ocispec.generate._rootfs import read_file_in_root, secure_join

# Portable user and group names (as useradd accepts them): never numeric-looking.
names = st.from_regex(r"[a-z_][a-z0-9_-]{0,7}", fullmatch=True)
ids = st.integers(0, 2**32 - 2)


@st.composite
def databases(draw: st.DrawFn) -> tuple[list[PasswdEntry], list[GroupEntry]]:
    users = draw(st.lists(st.tuples(names, ids, ids), max_size=6, unique_by=lambda t: t[0]))
    passwd = [
        PasswdEntry(name=n, uid=u, gid=g, home=f"/home/{n}", shell="/bin/sh") for n, u, g in users
    ]
    user_names = [p.name for p in passwd]
    groups = draw(
        st.lists(
            st.tuples(
                names,
                ids,
                st.lists(st.sampled_from(user_names), max_size=3) if user_names else st.just([]),
            ),
            max_size=6,
            unique_by=lambda t: t[0],
        )
    )
    group = [GroupEntry(name=n, gid=g, members=tuple(dict.fromkeys(m))) for n, g, m in groups]
    return passwd, group


def render_passwd(entries: list[PasswdEntry]) -> str:
    return "".join(f"{e.name}:x:{e.uid}:{e.gid}::{e.home}:{e.shell}\n" for e in entries)


def render_group(entries: list[GroupEntry]) -> str:
    return "".join(f"{e.name}:x:{e.gid}:{','.join(e.members)}\n" for e in entries)


@given(databases())
def test_passwd_and_group_files_round_trip(db: tuple[list[PasswdEntry], list[GroupEntry]]) -> None:
    passwd, group = db
    assert parse_passwd(render_passwd(passwd)) == passwd
    assert parse_group(render_group(group)) == group


@given(
    databases(),
    st.data(),
    st.lists(ids, max_size=3),
    st.sampled_from(list(SupplementalGroupsPolicy)),
)
def test_resolution_by_name(db, data, supplemental, policy) -> None:  # type: ignore[no-untyped-def]
    passwd, group = db
    assume(passwd)
    entry = data.draw(st.sampled_from(passwd))
    r = resolve_user(
        None,
        entry.name,
        supplemental_groups=supplemental,
        policy=policy,
        passwd=passwd,
        group=group,
    )
    assert (r.uid, r.gid, r.home, r.username) == (entry.uid, entry.gid, entry.home, entry.name)
    member_of = [g.gid for g in group if entry.name in g.members]
    expected = [
        entry.gid,
        *(member_of if policy is SupplementalGroupsPolicy.MERGE else []),
        *supplemental,
    ]
    assert r.additional_gids == tuple(dict.fromkeys(expected))


@given(databases(), ids, st.one_of(st.none(), ids, names))
def test_resolution_by_numeric_uid_and_group(db, uid, group_spec) -> None:  # type: ignore[no-untyped-def]
    passwd, group = db
    spec = str(uid) if group_spec is None else f"{uid}:{group_spec}"
    known_group = next((g for g in group if g.name == group_spec), None)
    if isinstance(group_spec, str) and known_group is None:
        with pytest.raises(UserResolutionError, match="no matching entries in group file"):
            resolve_user(None, spec, passwd=passwd, group=group)
        return
    r = resolve_user(None, spec, passwd=passwd, group=group)
    assert r.uid == uid
    entry = next((p for p in passwd if p.uid == uid), None)
    if group_spec is None:
        assert r.gid == (entry.gid if entry else 0)
    else:
        assert r.gid == (group_spec if isinstance(group_spec, int) else known_group.gid)  # type: ignore[union-attr]
        assert r.additional_gids == (r.gid,)  # an explicit group takes precedence
    assert r.home == (entry.home if entry else "/")


@given(databases(), names)
def test_unknown_names_are_errors(db, name) -> None:  # type: ignore[no-untyped-def]
    passwd, group = db
    assume(name not in {p.name for p in passwd})
    with pytest.raises(UserResolutionError, match="no matching entries in passwd file"):
        resolve_user(None, name, passwd=passwd, group=group)


def test_edge_cases() -> None:
    assert resolve_user(None, "").uid == 0
    for bad in ("4294967296", "1000:", "1000:4294967296", "-1"):
        with pytest.raises(UserResolutionError):
            resolve_user(None, bad)
    with pytest.raises(UserResolutionError, match="out of range"):
        resolve_user(None, "0", supplemental_groups=[-1])
    # Malformed lines are skipped, comments too.
    assert parse_passwd("# c\nbad\nx:y:one:2\nok:x:5:6::/h:/s\n") == [
        PasswdEntry(name="ok", uid=5, gid=6, home="/h", shell="/s")
    ]


# -- reading files inside a rootfs ----------------------------------------------------------

SECRET = b"host secret\n"


def _layout(root: Path, outside: Path, links: list[tuple[str, str]]) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "real").write_text("inside\n")
    (outside / "passwd").write_bytes(SECRET)
    for name, target in links:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() and not p.is_symlink():
            p.symlink_to(target)


link_targets = st.sampled_from(
    [
        "/etc/real",
        "real",
        "../../../../etc/passwd",
        "../../outside/passwd",
        "/../outside/passwd",
        "{outside}/passwd",
        "/etc/hop",
        "hop",
        "/etc",
        "..",
        "/",
        "missing",
    ]
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["etc/passwd", "etc/hop", "etc/group", "x/y"]), link_targets),
        max_size=4,
    )
)
def test_symlinks_never_escape_the_rootfs(links: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        outside = base / "outside"
        outside.mkdir()
        root = base / "root"
        root.mkdir()
        _layout(root, outside, [(n, t.format(outside=outside)) for n, t in links])
        for path in ("/etc/passwd", "/etc/group", "/x/y", "etc/hop"):
            try:
                fallback = read_file_in_root(root, path, use_openat2=False)
            except OSError:
                fallback = b"<error>"
            try:
                kernel = read_file_in_root(root, path)
            except OSError:
                kernel = b"<error>"
            assert fallback != SECRET and kernel != SECRET
            assert fallback == kernel
            try:
                joined = secure_join(root, path)
            except OSError:  # a symlink loop
                continue
            assert os.path.commonpath([joined, str(root)]) == str(root)


def test_symlinked_passwd_is_read_inside_the_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "etc" / "passwd").symlink_to("/tmp/passwd")
    (root / "tmp" / "passwd").write_text("inner:x:4242:4242::/in:/bin/sh\n")
    # Resolved inside the rootfs, so the host's /tmp/passwd (if any) is never read.
    assert resolve_user(root, "inner").uid == 4242
    (root / "etc" / "group").symlink_to("../../../../../tmp/group")
    assert resolve_user(root, "inner").additional_gids == (4242,)
    with pytest.raises(UserResolutionError):
        resolve_user(root, "root:root")  # the host has a root group; the rootfs does not
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").mkdir()
    with pytest.raises(UserResolutionError, match="cannot read"):
        resolve_user(root, "inner")


@given(
    databases(),
    st.data(),
    ids,
    st.lists(ids, max_size=3),
    st.sampled_from(list(SupplementalGroupsPolicy)),
)
def test_primary_gid_keeps_memberships(db, data, primary, supplemental, policy) -> None:  # type: ignore[no-untyped-def]
    """run_as_group replaces the primary group; Merge still adds /etc/group memberships."""
    passwd, group = db
    assume(passwd)
    entry = data.draw(st.sampled_from(passwd))
    r = resolve_user(
        None,
        str(entry.uid),
        supplemental_groups=supplemental,
        policy=policy,
        primary_gid=primary,
        passwd=passwd,
        group=group,
    )
    owner = next(p for p in passwd if p.uid == entry.uid)
    member_of = [g.gid for g in group if owner.name in g.members]
    expected = [
        primary,
        *(member_of if policy is SupplementalGroupsPolicy.MERGE else []),
        *supplemental,
    ]
    assert (r.uid, r.gid) == (entry.uid, primary)
    assert r.additional_gids == tuple(dict.fromkeys(expected))


def test_primary_gid_conflicts_with_a_named_group_and_range() -> None:
    with pytest.raises(UserResolutionError, match="names a group"):
        resolve_user(None, "0:0", primary_gid=5, passwd=[], group=[])
    with pytest.raises(UserResolutionError, match="out of range"):
        resolve_user(None, "0", primary_gid=-1, passwd=[], group=[])
