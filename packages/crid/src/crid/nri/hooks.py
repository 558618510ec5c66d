"""Where crid's pod and container managers meet NRI: one call per lifecycle hook point.

:class:`NRIHooks` is the gate. With NRI disabled, or no plugin connected or connecting,
every hook returns at once; otherwise it hands the event to :class:`~crid.nri.domain.
NRIDomain`, which turns crid's records into NRI messages for the
:class:`~crid.nri.host.NRIHost` and applies what plugins answer.

The protocol (messages, ttrpc, the host) loads when the first plugin connects or is
found installed, not when crid starts: most nodes run no NRI plugin, and NRI is enabled
by default, so an idle crid keeps ~1.6 MiB of code it would never run out of memory.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from crid.config import parse_duration
from crid.context import Context
from crid.nri.endpoint import HostOptions, installed_plugins, listen, stop_listening
from crid.state import Container, Sandbox

if TYPE_CHECKING:
    from crid.container.manager import Containers
    from crid.nri.domain import NRIDomain
    from crid.nri.host import NRIHost
    from ocispec.generate import GeneratedSpec, ResourceOptions

__all__ = ["NRIHooks"]


class NRIHooks:
    """The NRI side of one crid's lifecycle."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.containers: Containers | None = None
        self._options: HostOptions | None = None
        self._server: asyncio.AbstractServer | None = None
        self._domain: NRIDomain | None = None
        self._closing = False

    @property
    def host(self) -> NRIHost | None:
        """The plugins' host, once a plugin has come (None before, or with NRI off)."""
        return self._domain.host if self._domain is not None else None

    async def serve(self, containers: Containers) -> None:
        """With ``[crid.nri] enable``: listen for plugins and start the installed ones."""
        self.containers = containers
        config = self.ctx.config.crid.nri
        if not config.enable:
            return
        self._options = options = HostOptions(
            socket_path=config.socket_path,
            plugin_dir=config.plugin_dir,
            plugin_config_dir=config.plugin_config_dir,
            registration_timeout=parse_duration(config.plugin_registration_timeout),
            request_timeout=parse_duration(config.plugin_request_timeout),
            disable_connections=config.disable_connections,
        )
        installed = await asyncio.to_thread(installed_plugins, options.plugin_dir)
        if not options.disable_connections:
            self._server = await listen(Path(options.socket_path), self._accept)
        if installed:
            await self._load().host.launch(installed)

    def _load(self) -> NRIDomain:
        """The domain and its host, loading the protocol the first time."""
        if self._domain is None:
            assert self._options is not None and self.containers is not None
            from crid.nri.domain import NRIDomain  # the protocol loads with the first plugin

            self._domain = NRIDomain(self.ctx, self.containers, self._options)
        return self._domain

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        await self._load().host.accept(reader, writer)

    async def close(self) -> None:
        """Stop listening, tell the plugins crid is going down, disconnect them."""
        self._closing = True
        if self._server is not None:
            assert self._options is not None
            await stop_listening(self._server, Path(self._options.socket_path))
            self._server = None
        if self._domain is not None:
            await self._domain.close()

    def _active(self) -> NRIDomain | None:
        """The domain when some plugin is connected or connecting (its sync then decides
        whether this event is in its snapshot or delivered to it)."""
        domain = self._domain
        if domain is None or not domain.host.busy:
            return None
        return domain

    def adjusts_creates(self) -> bool:
        """Whether a plugin is connected or connecting now, so :meth:`create_container`
        must run before the runtime creates a container."""
        return self._active() is not None

    # -- pod hook points ----------------------------------------------------------

    async def run_pod(self, sandbox: Sandbox) -> None:
        """Before a new pod becomes READY; a plugin error fails RunPodSandbox."""
        if domain := self._active():
            await domain.run_pod(sandbox)

    async def stop_pod(self, sandbox: Sandbox) -> None:
        """After the pod's containers stopped, while the pod is still listed."""
        if domain := self._active():
            await domain.stop_pod(sandbox)

    async def remove_pod(self, sandbox: Sandbox) -> None:
        if domain := self._active():
            await domain.remove_pod(sandbox)

    async def update_pod(
        self, sandbox: Sandbox, overhead: ResourceOptions, resources: ResourceOptions
    ) -> None:
        """Before the pod cgroup's new limits are written; a plugin error fails it."""
        if domain := self._active():
            await domain.update_pod(sandbox, overhead, resources)

    async def post_update_pod(self, sandbox: Sandbox) -> None:
        if domain := self._active():
            await domain.post_update_pod(sandbox)

    # -- container hook points ----------------------------------------------------

    async def create_container(
        self, record: Container, sandbox: Sandbox, generated: GeneratedSpec
    ) -> tuple[Container, GeneratedSpec]:
        """Before the runtime creates the container: plugins' adjustments are applied to
        its config.json (and its cgroup path, when a plugin moves it)."""
        if domain := self._active():
            return await domain.create_container(record, sandbox, generated)
        return record, generated

    async def post_create(self, record: Container) -> None:
        if domain := self._active():
            await domain.post_create(record)

    async def start(self, record: Container) -> None:
        if domain := self._active():
            await domain.start(record)

    async def post_start(self, record: Container) -> None:
        if domain := self._active():
            await domain.post_start(record)

    async def update(self, record: Container, resources: ResourceOptions) -> ResourceOptions | None:
        """Before UpdateContainerResources applies ``resources``: the options plugins
        want instead (an update a plugin returns for this container), or None."""
        if domain := self._active():
            return await domain.update(record, resources)
        return None

    async def post_update(self, record: Container) -> None:
        if domain := self._active():
            await domain.post_update(record)

    async def stop(self, record: Container) -> None:
        """After the container exited (however it stopped)."""
        if domain := self._active():
            await domain.stop(record)

    async def remove(self, record: Container) -> None:
        """After the container is gone; its cached config is forgotten."""
        if domain := self._active():
            await domain.remove(record)
        elif self._domain is not None:
            self._domain.forget(record.id)
