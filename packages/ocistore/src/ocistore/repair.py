"""Start-up repair: finish or undo whatever a killed process left half-done.

The database is the truth. Directories it does not know (a layer renamed into place
but not recorded, a container being created) are deleted; records whose directory
is gone are dropped together with what depends on them; ``tmp/`` and ``trash/`` are
emptied; mounts under the store that no container or image volume owns are unmounted.
With ``fix=False`` the same walk only reports (``crid check`` without ``--repair``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ocistore import mounts
from ocistore._db import Database
from ocistore.containers import unmount_path

__all__ = ["RepairReport", "repair"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RepairReport:
    """What start-up repair found and fixed (paths and ids)."""

    temp_removed: list[str] = field(default_factory=list)
    layers_removed: list[str] = field(default_factory=list)
    layer_records_dropped: list[str] = field(default_factory=list)
    images_dropped: list[str] = field(default_factory=list)
    links_fixed: list[str] = field(default_factory=list)
    containers_removed: list[str] = field(default_factory=list)
    container_records_dropped: list[str] = field(default_factory=list)
    volumes_removed: list[str] = field(default_factory=list)
    volume_records_dropped: list[str] = field(default_factory=list)
    mounts_removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(getattr(self, f) for f in self.__dataclass_fields__)


def _unmount_under(path: Path, report: RepairReport, fix: bool) -> None:
    prefix = str(path) + "/"
    for mnt in sorted((m for m in mounts.mountpoints() if m.startswith(prefix)), reverse=True):
        if fix:
            unmount_path(Path(mnt))
        report.mounts_removed.append(mnt)


def _remove_tree(path: Path, report: RepairReport, fix: bool) -> None:
    _unmount_under(path, report, fix)
    if fix:
        shutil.rmtree(path, ignore_errors=True)


def _empty_dir(path: Path, report: RepairReport, fix: bool) -> None:
    if not path.is_dir():
        return
    for entry in sorted(path.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            _remove_tree(entry, report, fix)
        elif fix:
            entry.unlink(missing_ok=True)
        report.temp_removed.append(str(entry))


def repair(root: Path, db: Database, *, fix: bool = True) -> RepairReport:
    """Make the directories agree with the database; log and return what changed.

    ``fix=False`` changes nothing and returns what a repair would change.
    """
    report = RepairReport()
    for sub in ("tmp", "trash"):
        _empty_dir(root / sub, report, fix)
    _repair_layers(root, db, report, fix)
    _repair_containers(root, db, report, fix)
    if report.changed and fix:
        log.warning("repaired store root=%s report=%s", root, report)
    return report


def _repair_layers(root: Path, db: Database, report: RepairReport, fix: bool) -> None:
    rows = {str(r[0]).split(":", 1)[1]: (str(r[0]), str(r[1])) for r in
            db.query("SELECT chain_id, link FROM layers")}  # fmt: skip
    layers_dir = root / "layers"
    for entry in sorted(layers_dir.iterdir()):
        if entry.name not in rows:
            _remove_tree(entry, report, fix)
            report.layers_removed.append(entry.name)
    missing = [chain for hexid, (chain, _) in rows.items() if not (layers_dir / hexid).is_dir()]
    for chain in missing:
        images = db.query("SELECT image_id FROM image_layers WHERE chain_id = ?", (chain,))
        report.images_dropped.extend(str(image_id) for (image_id,) in images)
        report.layer_records_dropped.append(chain)
    if missing and fix:
        with db.transaction() as tx:
            for chain in missing:
                images = tx.execute(
                    "SELECT image_id FROM image_layers WHERE chain_id = ?", (chain,)
                ).fetchall()
                for (image_id,) in images:
                    tx.execute("DELETE FROM images WHERE id = ?", (image_id,))
                tx.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))
    links = root / "links"
    wanted = {link: hexid for hexid, (chain, link) in rows.items() if chain not in missing}
    for entry in sorted(links.iterdir()):
        if entry.name not in wanted:
            if fix:
                entry.unlink()
            report.links_fixed.append(entry.name)
    for link, hexid in wanted.items():
        path = links / link
        target = f"../layers/{hexid}/diff"
        if not path.is_symlink() or str(path.readlink()) != target:
            if fix:
                path.unlink(missing_ok=True)
                path.symlink_to(target)
            report.links_fixed.append(link)


def _repair_containers(root: Path, db: Database, report: RepairReport, fix: bool) -> None:
    rows = {str(r[0]): str(r[1]) for r in db.query("SELECT id, driver FROM containers")}
    cdir = root / "containers"
    for entry in sorted(cdir.iterdir()):
        if entry.name not in rows:
            _remove_tree(entry, report, fix)
            report.containers_removed.append(entry.name)
    gone = [cid for cid in rows if not (cdir / cid).is_dir()]
    report.container_records_dropped.extend(gone)
    if gone and fix:
        with db.transaction() as tx:
            for cid in gone:
                tx.execute("DELETE FROM containers WHERE id = ?", (cid,))
    owned = {str(cdir / cid / "merged") for cid, driver in rows.items() if driver == "overlay"}
    owned |= _repair_volumes(cdir, db, report, fix)
    prefix = str(root) + "/"
    for mnt in sorted(mounts.mountpoints(), reverse=True):
        inside_owned = any(mnt.startswith(o + "/") for o in owned)
        if mnt.startswith(prefix) and mnt not in owned and not inside_owned:
            if mnt in report.mounts_removed:
                continue
            if fix:
                unmount_path(Path(mnt))
            report.mounts_removed.append(mnt)


def _repair_volumes(cdir: Path, db: Database, report: RepairReport, fix: bool) -> set[str]:
    """Drop image volumes whose directory is gone and directories no record owns.

    Returns the mount points of the recorded volumes: they stay mounted, since running
    containers bind them.
    """
    rows = {str(r[0]): str(r[1]) for r in db.query("SELECT id, container_id FROM image_volumes")}
    gone = [vid for vid, cid in rows.items() if not (cdir / cid / "volumes" / vid).is_dir()]
    report.volume_records_dropped.extend(gone)
    if gone and fix:
        with db.transaction() as tx:
            for vid in gone:
                tx.execute("DELETE FROM image_volumes WHERE id = ?", (vid,))
    for volumes in sorted(cdir.glob("*/volumes")):
        for entry in sorted(volumes.iterdir()):
            if rows.get(entry.name) != volumes.parent.name:
                _remove_tree(entry, report, fix)
                report.volumes_removed.append(f"{volumes.parent.name}/{entry.name}")
    return {str(cdir / cid / "volumes" / vid / "merged") for vid, cid in rows.items()
            if vid not in gone}  # fmt: skip
