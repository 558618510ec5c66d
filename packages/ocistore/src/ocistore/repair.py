"""Start-up repair: finish or undo whatever a killed process left half-done.

The database is the truth. Directories it does not know (a layer renamed into place
but not recorded, a container being created) are deleted; records whose directory
is gone are dropped together with what depends on them; ``tmp/`` and ``trash/`` are
emptied; mounts under the store that no container or image volume owns are unmounted.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ocistore import _sys
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


def _unmount_under(path: Path, report: RepairReport) -> None:
    prefix = str(path) + "/"
    for mnt in sorted((m for m in _sys.mountpoints() if m.startswith(prefix)), reverse=True):
        unmount_path(Path(mnt))
        report.mounts_removed.append(mnt)


def _empty_dir(path: Path, report: RepairReport) -> None:
    for entry in sorted(path.iterdir()):
        _unmount_under(entry, report)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        report.temp_removed.append(str(entry))


def repair(root: Path, db: Database) -> RepairReport:
    """Make the directories agree with the database; log and return what changed."""
    report = RepairReport()
    for sub in ("tmp", "trash"):
        _empty_dir(root / sub, report)
    _repair_layers(root, db, report)
    _repair_containers(root, db, report)
    if report.changed:
        log.warning("repaired store root=%s report=%s", root, report)
    return report


def _repair_layers(root: Path, db: Database, report: RepairReport) -> None:
    rows = {str(r[0]).split(":", 1)[1]: (str(r[0]), str(r[1])) for r in
            db.query("SELECT chain_id, link FROM layers")}  # fmt: skip
    layers_dir = root / "layers"
    for entry in sorted(layers_dir.iterdir()):
        if entry.name not in rows:
            _unmount_under(entry, report)
            shutil.rmtree(entry, ignore_errors=True)
            report.layers_removed.append(entry.name)
    missing = [chain for hexid, (chain, _) in rows.items() if not (layers_dir / hexid).is_dir()]
    if missing:
        with db.transaction() as tx:
            for chain in missing:
                images = tx.execute(
                    "SELECT image_id FROM image_layers WHERE chain_id = ?", (chain,)
                ).fetchall()
                for (image_id,) in images:
                    tx.execute("DELETE FROM images WHERE id = ?", (image_id,))
                    report.images_dropped.append(str(image_id))
                tx.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))
                report.layer_records_dropped.append(chain)
    links = root / "links"
    wanted = {link: hexid for hexid, (chain, link) in rows.items() if chain not in missing}
    for entry in sorted(links.iterdir()):
        if entry.name not in wanted:
            entry.unlink()
            report.links_fixed.append(entry.name)
    for link, hexid in wanted.items():
        path = links / link
        target = f"../layers/{hexid}/diff"
        if not path.is_symlink() or str(path.readlink()) != target:
            path.unlink(missing_ok=True)
            path.symlink_to(target)
            report.links_fixed.append(link)


def _repair_containers(root: Path, db: Database, report: RepairReport) -> None:
    rows = {str(r[0]): str(r[1]) for r in db.query("SELECT id, driver FROM containers")}
    cdir = root / "containers"
    for entry in sorted(cdir.iterdir()):
        if entry.name not in rows:
            _unmount_under(entry, report)
            shutil.rmtree(entry, ignore_errors=True)
            report.containers_removed.append(entry.name)
    gone = [cid for cid in rows if not (cdir / cid).is_dir()]
    if gone:
        with db.transaction() as tx:
            for cid in gone:
                tx.execute("DELETE FROM containers WHERE id = ?", (cid,))
                report.container_records_dropped.append(cid)
    owned = {str(cdir / cid / "merged") for cid, driver in rows.items() if driver == "overlay"}
    owned |= _repair_volumes(cdir, db, report)
    prefix = str(root) + "/"
    for mnt in sorted(_sys.mountpoints(), reverse=True):
        inside_owned = any(mnt.startswith(o + "/") for o in owned)
        if mnt.startswith(prefix) and mnt not in owned and not inside_owned:
            unmount_path(Path(mnt))
            report.mounts_removed.append(mnt)


def _repair_volumes(cdir: Path, db: Database, report: RepairReport) -> set[str]:
    """Drop image volumes whose directory is gone and directories no record owns.

    Returns the mount points of the recorded volumes: they stay mounted, since running
    containers bind them.
    """
    rows = {str(r[0]): str(r[1]) for r in db.query("SELECT id, container_id FROM image_volumes")}
    gone = [vid for vid, cid in rows.items() if not (cdir / cid / "volumes" / vid).is_dir()]
    if gone:
        with db.transaction() as tx:
            for vid in gone:
                tx.execute("DELETE FROM image_volumes WHERE id = ?", (vid,))
                report.volume_records_dropped.append(vid)
    for volumes in sorted(cdir.glob("*/volumes")):
        for entry in sorted(volumes.iterdir()):
            if rows.get(entry.name) != volumes.parent.name:
                _unmount_under(entry, report)
                shutil.rmtree(entry, ignore_errors=True)
                report.volumes_removed.append(f"{volumes.parent.name}/{entry.name}")
    return {str(cdir / cid / "volumes" / vid / "merged") for vid, cid in rows.items()
            if vid not in gone}  # fmt: skip
