"""Where crid keeps things on disk, derived from ``root``, ``runroot`` and the config.

One place that names every path, so the layout documented in ``docs/crid.md`` is the
layout the code uses.

Persistent (``root``, default /var/lib/crid):
    state.db               pods and containers (SQLite, WAL)
    storage/               images, layers, container root filesystems (ocistore)
    cni/                   CNI result cache (libcni's layout), so DEL works after restarts

Volatile (``runroot``, default /run/crid):
    crid.sock              the CRI socket (``[crid.api] listen``)
    sandboxes/<id>/        a pod's hostname, hosts, resolv.conf and its /dev/shm mount
    containers/<id>/       a container's OCI bundle (config.json, conmon pid files, ctl fifo)
    attach/<id>/attach     conmon's attach sockets
    ns/                    pinned namespaces (``[crid.runtime] namespaces_dir`` overrides)
    exits/                 conmon's exit files (``[crid.runtime] container_exits_dir`` overrides)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crid.config import Config

__all__ = ["Layout"]


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Every directory crid uses."""

    root: Path
    runroot: Path
    namespaces: Path
    exits: Path
    log_dir: Path

    @classmethod
    def from_config(cls, config: Config) -> Layout:
        crid = config.crid
        return cls(
            root=Path(crid.root),
            runroot=Path(crid.runroot),
            namespaces=Path(crid.runtime.namespaces_dir or f"{crid.runroot}/ns"),
            exits=Path(crid.runtime.container_exits_dir or f"{crid.runroot}/exits"),
            log_dir=Path(crid.log_dir),
        )

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def cni_cache(self) -> Path:
        return self.root / "cni"

    @property
    def attach(self) -> Path:
        return self.runroot / "attach"

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.runroot / "sandboxes" / sandbox_id

    def bundle(self, container_id: str) -> Path:
        return self.runroot / "containers" / container_id

    def runtime_root(self, handler: str) -> Path:
        """The default ``--root`` of a runtime handler that configures none."""
        return self.runroot / "runtimes" / handler

    def create(self) -> None:
        """Make the directories that must exist before anything runs, root's alone.

        Bundles, pinned namespaces, attach sockets, exit files and the store hold what
        no other host user may reach (setuid binaries and device nodes in root
        filesystems, say), so each is 0700; ``runroot`` itself is 0711 so that a CRI
        socket inside it stays reachable as the socket's own mode allows. Modes are set
        on every start, so directories left by an older crid are tightened too.
        """
        for directory, mode in (
            (self.root, 0o700),
            (self.runroot, 0o711),
            (self.namespaces, 0o700),
            (self.exits, 0o700),
            (self.attach, 0o700),
            (self.runroot / "sandboxes", 0o700),
            (self.runroot / "containers", 0o700),
            (self.runroot / "runtimes", 0o700),
        ):
            directory.mkdir(parents=True, exist_ok=True, mode=mode)
            directory.chmod(mode)
