"""Everything a running crid holds, opened once at start and closed at stop.

RPC handlers and the orchestration modules (``crid.sandbox``, ``crid.container``,
``crid.images``) receive one :class:`Context`; it owns the configuration, the directory
layout, the state registry, the image store, the pod network, the OCI runtimes with
their conmon, the cgroup hierarchies and controllers, and the event bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from crid.cgroups import Hierarchies, detect_controllers
from crid.config import Config, parse_duration
from crid.errors import RuntimeHandlerError, StateError
from crid.events import EventBus
from crid.gc import Collector
from crid.layout import Layout
from crid.oci import (
    Conmon,
    HandlerFeatures,
    OCIRuntime,
    RuntimeFeatureCache,
    conmon_binary,
    runtime_binary,
)
from crid.rollbacks import Rollbacks
from crid.state import Registry
from ocinet import PodNetwork
from ocispec.generate import CgroupControllers, HostInfo
from ocistore import AsyncStore
from ocistore.errors import DatabaseCorruptError

__all__ = ["Context", "Handler"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Handler:
    """One runtime handler (the name a RuntimeClass uses): its runtime and conmon."""

    name: str
    runtime: OCIRuntime
    conmon: Conmon


class Context:
    """The daemon's long-lived parts."""

    def __init__(
        self,
        *,
        config: Config,
        layout: Layout,
        registry: Registry,
        store: AsyncStore,
        network: PodNetwork,
        hierarchies: Hierarchies,
        events: EventBus,
        controllers: CgroupControllers | None = None,
    ) -> None:
        self.config = config
        self.layout = layout
        self.registry = registry
        self.store = store
        self.network = network
        self.hierarchies = hierarchies
        self.events = events
        self.runtime_features = RuntimeFeatureCache()
        #: Handlers resolved so far (PATH searches cost ~1 ms of CPU on every RPC).
        self._handlers: dict[str, Handler] = {}
        #: Undo steps of failed or cancelled RPCs; stopping waits for them.
        self.rollbacks = Rollbacks()
        #: The cgroup controllers containers can use (resources of others are dropped).
        self.controllers = (
            controllers if controllers is not None else detect_controllers(hierarchies)
        )
        self._host: HostInfo | None = None
        self.gc = Collector(
            store=store,
            network=network,
            live_pods=lambda: [sandbox.id for sandbox in registry.sandboxes()],
        )

    @classmethod
    async def open(cls, config: Config) -> Context:
        """Create the directories, open state and storage, start watching CNI configs."""
        if config.crid.runtime.cgroup_manager == "systemd":
            from crid.cgroups.systemd_driver import probe_systemd

            await asyncio.to_thread(probe_systemd)
        layout = Layout.from_config(config)
        await asyncio.to_thread(layout.create)
        registry = await asyncio.to_thread(Registry.open, layout.state_db)
        try:
            store = await AsyncStore.open(
                layout.storage, driver="vfs" if config.crid.storage_driver == "vfs" else "auto"
            )
        except DatabaseCorruptError as err:
            registry.close()
            raise StateError(
                f"image store database {err}: crid does not start on it, so it never"
                " serves images or layers it no longer knows correctly: restore a backup,"
                f" or move {layout.storage} aside to start with an empty store (images"
                " are pulled again; containers still running lose their root filesystems)"
            ) from err
        except BaseException:
            registry.close()
            raise
        network_config = config.crid.network
        network = PodNetwork(
            conf_dir=network_config.network_dir,
            plugin_dirs=network_config.plugin_dirs,
            cache_dir=layout.cni_cache,
            network_name=network_config.cni_default_network or None,
            timeout=parse_duration(network_config.plugin_timeout),
        )
        await network.start()
        hierarchies = Hierarchies.detect()
        controllers = await asyncio.to_thread(detect_controllers, hierarchies)
        _log.info(
            "cgroup controllers: %s (swap accounting %s)",
            " ".join(sorted(controllers.available)) or "none",
            "on" if controllers.swap else "off",
        )
        return cls(
            config=config,
            layout=layout,
            registry=registry,
            store=store,
            network=network,
            hierarchies=hierarchies,
            events=EventBus(),
            controllers=controllers,
        )

    async def host_info(self) -> HostInfo:
        """The config generator's facts about this host, with the usable cgroup
        controllers (read once)."""
        if self._host is None:
            detected = await asyncio.to_thread(HostInfo.detect)
            self._host = dataclasses.replace(detected, cgroup_controllers=self.controllers)
        return self._host

    async def close(self) -> None:
        """Release what :meth:`open` took; running containers are left to conmon."""
        self.events.close()
        await self.gc.close()
        await self.network.stop()
        await self.store.close()
        await asyncio.to_thread(self.registry.close)

    async def handler_features(self, name: str = "") -> HandlerFeatures:
        """What the handler called ``name`` supports (nothing when it cannot run)."""
        try:
            handler = self.handler(name)
        except RuntimeHandlerError as err:
            return HandlerFeatures(reasons=(str(err),))
        return await self.runtime_features.get(handler.runtime.binary)

    def handler(self, name: str = "") -> Handler:
        """The runtime handler called ``name`` ("" is the default one).

        Resolved once and kept while both its binaries are still executable files (two
        stats instead of a search of PATH on each call); a binary removed or replaced
        by a missing one is looked for again, and an unresolvable handler never cached.
        """
        cached = self._handlers.get(name)
        if (
            cached is not None
            and _runnable(cached.runtime.binary)
            and _runnable(cached.conmon.binary)
        ):
            return cached
        self._handlers.pop(name, None)
        handler = self._resolve_handler(name)
        self._handlers[name] = handler
        return handler

    def _resolve_handler(self, name: str) -> Handler:
        runtime_config = self.config.crid.runtime
        handler_name = name or runtime_config.default_runtime
        settings = runtime_config.runtimes.get(handler_name)
        if settings is None:
            raise RuntimeHandlerError(
                f"no runtime handler {handler_name!r} (configured:"
                f" {', '.join(sorted(runtime_config.runtimes))})"
            )
        binary = runtime_binary(handler_name, settings)
        conmon = conmon_binary(runtime_config.conmon)
        if binary is None or conmon is None:
            missing = "runtime" if binary is None else "conmon"
            raise RuntimeHandlerError(
                f"runtime handler {handler_name!r}: {missing} binary not found"
            )
        root = (
            Path(settings.runtime_root)
            if settings.runtime_root
            else (self.layout.runtime_root(handler_name))
        )
        runtime = OCIRuntime(
            name=handler_name,
            binary=binary,
            root=root,
            timeout=parse_duration(runtime_config.runtime_timeout),
        )
        return Handler(
            name=handler_name,
            runtime=runtime,
            conmon=Conmon(
                binary=conmon,
                runtime=runtime,
                log_level=self.config.crid.log_level,
                create_timeout=parse_duration(runtime_config.create_timeout),
            ),
        )


def _runnable(path: Path) -> bool:
    """Still an executable file: one stat (crid runs as root, for whom any execute bit
    makes a file executable), where ``is_file`` and ``access`` took two per binary."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and bool(mode & 0o111)
