"""Pod networking in one object: a watched configuration directory plus the CNI runner.

This is what crid uses: ``setup`` attaches a pod's network namespace to the default (or a
named) network, ``teardown`` detaches it (idempotently, and after a restart, thanks to the
result cache), and ``readiness`` says whether the network can be used right now.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from ocinet.cni import CNI, run_sync
from ocinet.confdir import DEFAULT_CONF_DIR, ConfigDir, Readiness
from ocinet.config import NetworkConfig
from ocinet.errors import NetError, NetworkNotReadyError
from ocinet.invoke import DEFAULT_PLUGIN_DIRS
from ocinet.result import Result
from ocinet.runtime import Bandwidth, PodRef, PortMapping, RuntimeConf

__all__ = ["PodNetwork"]

log = logging.getLogger(__name__)


class PodNetwork:
    """Attach and detach pods; the configuration directory is watched while started."""

    def __init__(
        self,
        *,
        conf_dir: str | os.PathLike[str] = DEFAULT_CONF_DIR,
        plugin_dirs: Sequence[str | os.PathLike[str]] = DEFAULT_PLUGIN_DIRS,
        cache_dir: str | os.PathLike[str] = "/var/lib/cni",
        network_name: str | None = None,
        timeout: float = 60.0,
        poll_interval: float = 2.0,
        use_inotify: bool = True,
        cni: CNI | None = None,
    ) -> None:
        self.cni = cni or CNI(plugin_dirs=plugin_dirs, cache_dir=cache_dir, timeout=timeout)
        self.configs = ConfigDir(
            conf_dir,
            network_name=network_name,
            plugin_dirs=self.cni.plugin_dirs,
            poll_interval=poll_interval,
            use_inotify=use_inotify,
        )
        self.configs.reload()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching the configuration directory."""
        self.configs.start()

    async def stop(self) -> None:
        """Stop watching."""
        await self.configs.stop()

    async def __aenter__(self) -> PodNetwork:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def readiness(self) -> Readiness:
        """Whether a network is usable, and why not (for crid's Status)."""
        return self.configs.readiness

    # -- pods -----------------------------------------------------------------------------

    async def setup(
        self,
        *,
        container_id: str,
        netns: str,
        pod: PodRef | None = None,
        ifname: str = "eth0",
        network: str | None = None,
        port_mappings: Sequence[PortMapping] = (),
        bandwidth: Bandwidth | None = None,
        dns: Mapping[str, Any] | None = None,
        cgroup_path: str = "",
        extra_capabilities: Mapping[str, Any] | None = None,
    ) -> Result:
        """ADD the pod to the network; if ADD fails, DEL (best effort) what it set up, re-raise."""
        config = self._network(network)
        rt = RuntimeConf.for_pod(
            container_id=container_id,
            netns=netns,
            pod=pod,
            ifname=ifname,
            port_mappings=port_mappings,
            bandwidth=bandwidth,
            dns=dns,
            cgroup_path=cgroup_path,
            extra_capabilities=extra_capabilities,
        )
        try:
            return await self.cni.add(config, rt)
        except BaseException:
            try:
                await self.cni.delete(config, rt, best_effort=True)
            except NetError as cleanup_err:
                log.warning(
                    "event=cni_add_cleanup_failed container=%s error=%s", container_id, cleanup_err
                )
            raise

    async def teardown(
        self,
        *,
        container_id: str,
        netns: str = "",
        pod: PodRef | None = None,
        ifname: str = "eth0",
        network: str | None = None,
        port_mappings: Sequence[PortMapping] = (),
    ) -> None:
        """DEL the pod from the network; succeeds if it is already detached."""
        config = self._network(network)
        rt = RuntimeConf.for_pod(
            container_id=container_id,
            netns=netns,
            pod=pod,
            ifname=ifname,
            port_mappings=port_mappings,
        )
        cached = await asyncio.to_thread(self.cni.cache.readable, config.name, container_id, ifname)
        if cached is not None:
            # After a restart the caller may know only the id: what ADD was given fills in.
            rt = RuntimeConf(
                container_id=container_id,
                netns=netns or cached.netns,
                ifname=ifname,
                args=rt.args if pod is not None else cached.cni_args,
                capability_args=(
                    rt.capability_args if port_mappings else dict(cached.capability_args)
                ),
            )
        await self.cni.delete(config, rt, cached=cached)

    async def check(
        self,
        *,
        container_id: str,
        netns: str,
        pod: PodRef | None = None,
        ifname: str = "eth0",
        network: str | None = None,
    ) -> None:
        """CHECK that the pod's attachment is still as ADD left it."""
        config = self._network(network)
        rt = RuntimeConf.for_pod(container_id=container_id, netns=netns, pod=pod, ifname=ifname)
        await self.cni.check(config, rt)

    async def status(self, network: str | None = None) -> None:
        """Raise unless the network is loaded and its plugins report ready (CNI 1.1 STATUS)."""
        await self.cni.status(self._network(network))

    async def validate(self, network: str | None = None) -> None:
        """Ask every plugin of the network (VERSION) whether it speaks the network's version."""
        await self.cni.validate(self._network(network))

    async def gc(
        self, valid_attachments: Iterable[tuple[str, str]], network: str | None = None
    ) -> None:
        """Remove every cached attachment not in ``(container_id, ifname)`` pairs, then GC."""
        await self.cni.gc(self._network(network), valid_attachments)

    # -- synchronous entry points ---------------------------------------------------------

    def setup_sync(self, **kwargs: Any) -> Result:
        """Blocking :meth:`setup`."""
        return run_sync(self.setup(**kwargs))

    def teardown_sync(self, **kwargs: Any) -> None:
        """Blocking :meth:`teardown`."""
        run_sync(self.teardown(**kwargs))

    def check_sync(self, **kwargs: Any) -> None:
        """Blocking :meth:`check`."""
        run_sync(self.check(**kwargs))

    def _network(self, name: str | None) -> NetworkConfig:
        if self.configs.mode == "none":
            # Not watching: the caller relies on explicit reloads, but stay current anyway.
            self.configs.reload()
        if name is None and not self.configs.ready:
            raise NetworkNotReadyError(self.configs.reason)
        return self.configs.get(name)
