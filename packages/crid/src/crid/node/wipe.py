"""``crid wipe``: remove every pod, container and image crid holds, offline.

Without ``force`` it refuses while any container's process still runs (a reboot
usually ended them; otherwise the operator decides); with ``force`` the OCI runtime
kills and deletes them first. It unmounts what crid mounted under its run
directory (pinned namespaces, /dev/shm), removes bundles, root filesystems, images
and records, and leaves the CNI cache: the next start's CNI GC releases the wiped
pods' addresses. The daemon lock is held throughout (the caller takes it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from crid.cgroups import Hierarchies
from crid.cgroups.parent import remove_pod_cgroup
from crid.config import Config
from crid.errors import CgroupError, CridError
from crid.layout import Layout
from crid.oci import runtime_binary
from crid.sandbox.pidns import release_pid_namespace
from crid.state import StateDB
from ocistore import Store, StoreError
from ocistore.containers import unmount_path

__all__ = ["WipeReport", "wipe_node"]

_log = logging.getLogger(__name__)

_LIVE = {"created", "running", "paused", "pausing", "creating"}


@dataclass(frozen=True, kw_only=True)
class WipeReport:
    """What a wipe removed, or (``refused``) the live containers that stopped it."""

    refused: bool = False
    running: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    pods: int = 0
    containers: int = 0
    images: int = 0
    unmounted: int = 0


def _runtimes(config: Config, layout: Layout) -> list[tuple[Path, Path]]:
    """(binary, --root) of every installed handler."""
    found = []
    for name, handler in config.crid.runtime.runtimes.items():
        binary = runtime_binary(name, handler)
        if binary is not None:
            root = Path(handler.runtime_root) if handler.runtime_root else layout.runtime_root(name)
            found.append((binary, root))
    return found


def _runtime_containers(binary: Path, root: Path) -> list[tuple[str, str]]:
    """(id, status) of the containers a runtime knows under ``root``."""
    if not root.is_dir():
        return []
    done = subprocess.run(
        [str(binary), "--root", str(root), "list", "--format", "json"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise CridError(f"{binary} list --root {root} failed: {done.stderr.strip()}")
    return [(str(c["id"]), str(c["status"])) for c in json.loads(done.stdout or "null") or []]


def _delete(binary: Path, root: Path, container_id: str) -> None:
    subprocess.run(
        [str(binary), "--root", str(root), "delete", "--force", container_id],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip


def _unmount_below(path: Path) -> int:
    prefix = str(path) + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            mounts.append(point)
    for point in sorted(set(mounts), reverse=True):
        with contextlib.suppress(StoreError, OSError):
            unmount_path(Path(point))
    return len(set(mounts))


def _wipe_store(storage: Path) -> tuple[int, int]:
    if not (storage / "store.db").is_file():
        return 0, 0
    with Store.open(storage, lock_timeout=0.0, driver="vfs") as store:
        containers = store.list_containers()
        for container in containers:
            store.remove_container(container.id)
        images = store.list_images()
        for image in images:
            store.remove_image(image.id)
        store.gc(blob_grace=0)
    return len(containers), len(images)


def wipe_node(config: Config, *, force: bool = False) -> WipeReport:
    """Remove all pods, containers and images (the caller holds the daemon lock)."""
    layout = Layout.from_config(config)
    runtimes = _runtimes(config, layout)
    known = [(binary, root, cid, status) for binary, root in runtimes
             for cid, status in _runtime_containers(binary, root)]  # fmt: skip
    running = sorted(cid for _, _, cid, status in known if status in _LIVE)
    if running and not force:
        return WipeReport(refused=True, running=running)
    for binary, root, container_id, _ in known:
        _delete(binary, root, container_id)
    state = StateDB(layout.state_db) if layout.state_db.is_file() else None
    sandboxes = state.sandboxes() if state is not None else []
    records = state.containers() if state is not None else []
    pid_pins = layout.namespaces / "pidns"
    if pid_pins.is_dir():  # each pod's shared PID namespace has a holder process
        for pin in sorted(pid_pins.iterdir()):
            release_pid_namespace(pin)
    unmounted = _unmount_below(layout.runroot)
    if layout.namespaces != layout.runroot / "ns":
        unmounted += _unmount_below(layout.namespaces)
    for directory in (layout.runroot / "containers", layout.runroot / "sandboxes",
                      layout.namespaces, layout.exits, layout.attach):  # fmt: skip
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
    hierarchies = Hierarchies.detect()
    for sandbox in sandboxes:
        if sandbox.cgroup_parent:
            with contextlib.suppress(CgroupError, CridError, OSError):
                remove_pod_cgroup(hierarchies, sandbox.cgroup_parent, timeout=1.0)
    rootfs, images = _wipe_store(layout.storage)
    if state is not None:
        for record in records:
            state.delete_container(record.id)
        for sandbox in sandboxes:
            state.delete_sandbox(sandbox.id)
        state.close()
    report = WipeReport(
        killed=running,
        pods=len(sandboxes),
        containers=max(len(records), rootfs),
        images=images,
        unmounted=unmounted,
    )
    _log.warning("wiped node: %s", report)
    return report
