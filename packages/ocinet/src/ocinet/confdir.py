"""A watched CNI configuration directory with queryable readiness.

The directory is read on :meth:`ConfigDir.reload`; :meth:`ConfigDir.watch` keeps it current
with inotify (the ``asyncinotify`` package, on the event loop, as crid's exit monitor) or,
where inotify is unavailable, by polling, so a network installed after start-up (by a
network provider's DaemonSet, say) makes the runtime network-ready without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncinotify import Event, Inotify, Mask

from ocinet.config import NetworkConfig, load_config_dir
from ocinet.errors import NetworkNotFoundError, NetworkNotReadyError, PluginNotFoundError
from ocinet.invoke import DEFAULT_PLUGIN_DIRS, find_plugin

__all__ = ["DEFAULT_CONF_DIR", "ConfigDir", "Readiness"]

log = logging.getLogger(__name__)

#: Where CNI configurations live unless configured otherwise.
DEFAULT_CONF_DIR = "/etc/cni/net.d"

_WATCH_MASK = (
    Mask.MODIFY
    | Mask.ATTRIB
    | Mask.CLOSE_WRITE
    | Mask.MOVED_FROM
    | Mask.MOVED_TO
    | Mask.CREATE
    | Mask.DELETE
    | Mask.DELETE_SELF
    | Mask.MOVE_SELF
)
#: The watched directory itself went away (deleted, renamed, or its file system unmounted).
_GONE = Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.IGNORED


@dataclass(frozen=True, kw_only=True)
class Readiness:
    """Whether the network is usable and, if not, why (the text crid's Status reports)."""

    ready: bool
    reason: str = ""
    network: str | None = None


class ConfigDir:
    """The networks of one configuration directory, reloaded on change."""

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_CONF_DIR,
        *,
        network_name: str | None = None,
        plugin_dirs: Sequence[str | os.PathLike[str]] = DEFAULT_PLUGIN_DIRS,
        poll_interval: float = 2.0,
        use_inotify: bool = True,
        debounce: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.network_name = network_name
        self.plugin_dirs = tuple(plugin_dirs)
        self.poll_interval = poll_interval
        self.use_inotify = use_inotify
        self.debounce = debounce
        self._networks: tuple[NetworkConfig, ...] = ()
        self._errors: tuple[tuple[Path, str], ...] = ()
        self._readiness = Readiness(ready=False, reason="configuration not loaded yet")
        self._listeners: list[Callable[[Readiness], None]] = []
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.mode = "none"

    # -- state ----------------------------------------------------------------------------

    @property
    def networks(self) -> tuple[NetworkConfig, ...]:
        """The valid networks, in file-name order."""
        return self._networks

    @property
    def errors(self) -> tuple[tuple[Path, str], ...]:
        """Files that were rejected at the last reload, with the reason."""
        return self._errors

    @property
    def readiness(self) -> Readiness:
        """The readiness computed at the last reload."""
        return self._readiness

    @property
    def ready(self) -> bool:
        """Shorthand for ``readiness.ready``."""
        return self._readiness.ready

    @property
    def reason(self) -> str:
        """Why the network is not ready ("" when it is)."""
        return self._readiness.reason

    def get(self, name: str | None = None) -> NetworkConfig:
        """The network called ``name``, or the configured/default one."""
        wanted = name or self.network_name
        if wanted is None:
            if not self._networks:
                raise NetworkNotReadyError(self._readiness.reason or self._no_config_reason())
            return self._networks[0]
        for network in self._networks:
            if network.name == wanted:
                return network
        raise NetworkNotFoundError(f"network {wanted!r} not found in {self.path}")

    def add_listener(self, callback: Callable[[Readiness], None]) -> None:
        """Call ``callback(readiness)`` after every reload that changed something."""
        self._listeners.append(callback)

    # -- loading --------------------------------------------------------------------------

    def reload(self) -> Readiness:
        """Re-read the directory and recompute readiness (blocking, small files only)."""
        contents = load_config_dir(self.path)
        before = (self._networks, self._errors, self._readiness)
        self._networks = contents.networks
        self._errors = contents.errors
        self._readiness = self._compute_readiness()
        if before != (self._networks, self._errors, self._readiness):
            log.info(
                "event=cni_config_reloaded dir=%s networks=%s ready=%s reason=%r",
                self.path,
                ",".join(n.name for n in self._networks),
                self._readiness.ready,
                self._readiness.reason,
            )
            for callback in list(self._listeners):
                callback(self._readiness)
        if self._changed is not None:
            self._changed.set()
        return self._readiness

    def _no_config_reason(self) -> str:
        reason = f"no valid CNI network config found in {self.path}"
        if self._errors:
            reason += "; " + "; ".join(msg for _, msg in self._errors)
        return reason

    def _compute_readiness(self) -> Readiness:
        try:
            network = self.get()
        except (NetworkNotReadyError, NetworkNotFoundError) as err:
            return Readiness(
                ready=False, reason=str(err) if self._networks else self._no_config_reason()
            )
        for plugin in network.plugins:
            try:
                find_plugin(plugin.type, self.plugin_dirs)
            except PluginNotFoundError as err:
                return Readiness(ready=False, reason=err.msg, network=network.name)
        return Readiness(ready=True, network=network.name)

    # -- watching -------------------------------------------------------------------------

    def start(self) -> None:
        """Load now and keep watching in a background task on the running loop."""
        if self._task is None or self._task.done():
            self.reload()
            self._task = asyncio.get_running_loop().create_task(self.watch(), name="cni-confdir")

    async def stop(self) -> None:
        """Stop the background watch started by :meth:`start`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.mode = "none"

    async def wait_ready(self, timeout: float | None = None) -> Readiness:
        """Wait until the network is ready (needs :meth:`start` or :meth:`watch` running)."""

        async def waiter() -> Readiness:
            while not self._readiness.ready:
                if self._changed is None:
                    self._changed = asyncio.Event()
                self._changed.clear()
                await self._changed.wait()
            return self._readiness

        return await asyncio.wait_for(waiter(), timeout)

    async def watch(self) -> None:
        """Reload whenever the directory changes, until cancelled."""
        if self._changed is None:
            self._changed = asyncio.Event()
        self.reload()
        while True:
            if self.use_inotify and await self._watch_inotify():
                continue
            # No directory to watch yet (or no inotify): poll, and retry inotify each round.
            self.mode = "poll"
            await self._poll_once()

    async def _poll_once(self) -> None:
        before = _snapshot(self.path)
        await asyncio.sleep(self.poll_interval)
        if _snapshot(self.path) != before:
            self.reload()

    async def _watch_inotify(self) -> bool:
        """Watch with inotify until the directory goes away; False if it cannot be watched."""
        try:
            # sync_timeout=0: sync_get() answers None at once when nothing is pending.
            inotify = Inotify(sync_timeout=0)
        except OSError as err:
            log.warning("event=cni_inotify_unavailable error=%s", err)
            self.use_inotify = False
            return False
        with inotify:
            try:
                inotify.add_watch(self.path, _WATCH_MASK)
            except OSError:
                return False
            self.mode = "inotify"
            self.reload()  # catch changes made before the watch existed
            while True:
                first = await inotify.get()
                await asyncio.sleep(self.debounce)  # one reload for a burst of changes
                gone = _drain(inotify, first)
                self.reload()
                if gone:
                    return True


def _drain(inotify: Inotify, first: Event) -> bool:
    """Take every pending event; True if the watched directory itself went away."""
    gone = bool(first.mask & _GONE)
    while (event := inotify.sync_get()) is not None:
        gone = gone or bool(event.mask & _GONE)
    return gone


def _snapshot(path: Path) -> tuple[tuple[str, int, int], ...] | None:
    try:
        entries = os.scandir(path)
    except OSError:
        return None
    with entries:
        found = []
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue
            found.append((entry.name, st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))
