"""A leak checker for fault tests: snapshot what crid may leave on the host, compare later.

A :class:`Scope` names one test's crid (root, runroot), its CNI network (bridge, IPAM
directory, name) and its cgroup parent; :func:`snapshot` records, within that scope only
(other tests run beside this one), everything a pod's life makes: mounts and namespace
pins, bridge ports, cgroups in every hierarchy, processes (conmon, runc, container
processes, the ``catatonit -P`` PID-namespace holder), host-local leases, iptables rules,
files under root and runroot, state records and store containers. :func:`assert_no_leaks`
waits a little (conmon and the store GC finish on their own) and fails naming what is new.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Scope", "Snapshot", "assert_no_leaks", "leaks", "processes", "snapshot"]

#: Files that change without anything being made or lost (SQLite's WAL, locks, sockets).
_VOLATILE_SUFFIXES = ("-wal", "-shm", "-journal")
_ID = re.compile(r"[0-9a-f]{32,}|sha256")


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What belongs to one test's crid."""

    root: Path
    runroot: Path
    network: str
    bridge: str
    ipam_dir: Path
    cgroup_parent: str  # without the leading slash


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """One look at everything in scope; each field a set of printable items."""

    mounts: frozenset[str]
    namespace_pins: frozenset[str]
    bridge_ports: frozenset[str]
    cgroups: frozenset[str]
    processes: frozenset[str]
    leases: frozenset[str]
    iptables: frozenset[str]
    files: frozenset[str]
    records: frozenset[str]
    store_containers: frozenset[str]


def _mountinfo() -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount this process sees."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        found.append((fields[4].replace("\\040", " "), fstype))
    return found


def _under(path: str, scope: Scope) -> bool:
    return any(path == str(d) or path.startswith(f"{d}/") for d in (scope.root, scope.runroot))


def _mounts(scope: Scope) -> tuple[frozenset[str], frozenset[str]]:
    mounts, pins = set(), set()
    for target, fstype in _mountinfo():
        if _under(target, scope):
            (pins if fstype == "nsfs" else mounts).add(f"{fstype} {target}")
    return frozenset(mounts), frozenset(pins)


def _bridge_ports(scope: Scope) -> frozenset[str]:
    brif = Path("/sys/class/net", scope.bridge, "brif")
    return frozenset(p.name for p in brif.iterdir()) if brif.is_dir() else frozenset()


def _hierarchies() -> list[Path]:
    return sorted(
        {Path(target) for target, fstype in _mountinfo() if fstype in ("cgroup", "cgroup2")}
    )


def _cgroups(scope: Scope) -> frozenset[str]:
    """Every cgroup below the parent (the parent itself is the test's), per hierarchy."""
    found = set()
    for hierarchy in _hierarchies():
        top = hierarchy / scope.cgroup_parent
        for directory, subdirs, _files in os.walk(top):
            found.update(f"{Path(directory, s).relative_to(hierarchy.parent)}" for s in subdirs)
    return frozenset(found)


def _proc_cmdline(pid: str) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return ""


def processes(scope: Scope) -> frozenset[str]:
    """Processes that mention root or runroot, their descendants, and those in the
    test's cgroups; crid itself and this test process are not leaks."""
    parents: dict[str, str] = {}
    cmdlines: dict[str, str] = {}
    starts: dict[str, str] = {}
    mine: set[str] = set()
    marker = f"/{scope.cgroup_parent}/"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cgroup = Path(f"/proc/{entry.name}/cgroup").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[entry.name], starts[entry.name] = fields[1], fields[19]
        cmdlines[entry.name] = _proc_cmdline(entry.name)
        if marker in cgroup or _under_any(cmdlines[entry.name], scope):
            mine.add(entry.name)
    changed = True
    while changed:  # descendants: an unshare's catatonit, conmon's container process
        extra = {pid for pid, parent in parents.items() if parent in mine} - mine
        mine |= extra
        changed = bool(extra)
    mine.discard(str(os.getpid()))
    return frozenset(
        f"{pid}@{starts[pid]} {cmdlines[pid][:200]}"
        for pid in mine
        if " crid serve " not in f" {cmdlines[pid]} " and "-m crid serve" not in cmdlines[pid]
    )


def _under_any(text: str, scope: Scope) -> bool:
    return str(scope.root) in text or str(scope.runroot) in text


def _leases(scope: Scope) -> frozenset[str]:
    directory = scope.ipam_dir / scope.network
    if not directory.is_dir():
        return frozenset()
    return frozenset(
        f"{p.name} {p.read_text().strip()[:80]}"
        for p in directory.iterdir()
        if p.name != "lock" and not p.name.startswith("last_reserved_ip")
    )


def _iptables(scope: Scope) -> frozenset[str]:
    """Rules mentioning the network (portmap and bridge comments name it), and the
    chains they jump to with everything in them."""
    found = set()
    for table in ("nat", "filter"):
        lines = subprocess.run(
            ["iptables-save", "-t", table], check=False, capture_output=True, text=True
        ).stdout.splitlines()
        chains: set[str] = set()
        for line in lines:
            if line.startswith("-A ") and scope.network in line:
                found.add(f"{table} {line}")
                args = line.split()
                if "-j" in args:
                    chains.add(args[args.index("-j") + 1])
        for line in lines:
            args = line.split()
            if line.startswith("-A ") and args[1] in chains:
                found.add(f"{table} {line}")
            if line.startswith(":") and line[1:].split()[0] in chains:
                found.add(f"{table} chain {line[1:].split()[0]}")
    return frozenset(found)


def _files(scope: Scope) -> frozenset[str]:
    """Every path under root and runroot, not descending into mounts (rootfs)."""
    found = set()
    for top in (scope.root, scope.runroot):
        for directory, subdirs, files in os.walk(top):
            here = Path(directory)
            for name in list(subdirs):
                if os.path.ismount(here / name):
                    subdirs.remove(name)
                    found.add(f"{here / name}/ (mounted)")
            # Directories count when named by an id (a bundle, a pod's files); the others
            # (ns/netns, cni/results) are made once and stay.
            for name in [*(s for s in subdirs if _ID.fullmatch(s)), *files]:
                if not name.endswith(_VOLATILE_SUFFIXES):
                    found.add(str(here / name))
    return frozenset(found)


def _query(database: Path, sql: str) -> list[tuple[str, ...]]:
    if not database.exists():
        return []
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(str(v) for v in row) for row in connection.execute(sql)]
    finally:
        connection.close()


def _records(scope: Scope) -> frozenset[str]:
    database = scope.root / "state.db"
    rows = _query(database, "SELECT 'sandbox', id, name FROM sandboxes")
    rows += _query(database, "SELECT 'container', id, name FROM containers")
    return frozenset(" ".join(row) for row in rows)


def _store_containers(scope: Scope) -> frozenset[str]:
    database = scope.root / "storage" / "store.db"
    rows = _query(database, "SELECT 'container', id FROM containers")
    rows += _query(database, "SELECT 'layer', chain_id FROM layers")
    rows += _query(database, "SELECT 'image volume', id FROM image_volumes")
    return frozenset(" ".join(row) for row in rows)


def snapshot(scope: Scope) -> Snapshot:
    """Look at everything in ``scope`` now."""
    mounts, pins = _mounts(scope)
    return Snapshot(
        mounts=mounts,
        namespace_pins=pins,
        bridge_ports=_bridge_ports(scope),
        cgroups=_cgroups(scope),
        processes=processes(scope),
        leases=_leases(scope),
        iptables=_iptables(scope),
        files=_files(scope),
        records=_records(scope),
        store_containers=_store_containers(scope),
    )


def leaks(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """What ``after`` has that ``before`` had not, per kind (empty: no leak)."""
    found = {}
    for field in dataclasses.fields(Snapshot):
        new = getattr(after, field.name) - getattr(before, field.name)
        if new:
            found[field.name] = sorted(new)
    return found


def assert_no_leaks(before: Snapshot, scope: Scope, *, settle: float = 10.0) -> None:
    """Fail naming every leak still present after up to ``settle`` seconds."""
    deadline = time.monotonic() + settle
    while True:
        found = leaks(before, snapshot(scope))
        if not found or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert not found, "leaked: " + "; ".join(
        f"{kind}: {', '.join(items[:8])}" for kind, items in found.items()
    )
