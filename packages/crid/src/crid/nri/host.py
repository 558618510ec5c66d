"""The runtime side of NRI: plugins connect (or are started), register, get configured
and synchronized, then receive the pod and container events they subscribed to.

Events go to plugins one at a time in index order (then name). Each call is bounded
by ``request_timeout``: a plugin that misses it, or whose connection breaks, is
disconnected and the event goes on without it, so a stuck plugin never stalls the
CRI for longer than one timeout. A plugin that *answers* with an error fails the
blocking events (RunPodSandbox, CreateContainer, UpdateContainer); for the others the
error is logged.

Synchronization and event delivery exclude each other (a shared/exclusive lock):
a new plugin gets the snapshot of pods and containers and joins the event list in
one step, so an event is either in its snapshot or delivered to it afterwards, never
lost. Events wait while a plugin synchronizes (at most ``registration_timeout``).

The host does not listen: :class:`crid.nri.hooks.NRIHooks` does (:mod:`crid.nri.endpoint`),
creates the host when the first plugin comes, and hands it each connection
(:meth:`NRIHost.accept`) and each pre-installed plugin (:meth:`NRIHost.launch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from google.protobuf.message import Message

from crid._nri.v1alpha1 import api_pb2 as api
from crid.errors import NRIClosedError, NRIError, NRIPluginError, NRIRejectedError
from crid.nri.endpoint import (
    HostOptions,
    InstalledPlugin,
)
from crid.nri.owners import merge_adjustments, owning_plugins
from crid.nri.plugin_link import ALL_EVENTS, RUNTIME_SERVICE, PluginLink
from crid.nri.ttrpc import UNIMPLEMENTED, Handler, StatusError, method

__all__ = ["CreateResult", "Domain", "NRIHost"]

_log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

#: The NRI version crid speaks (the proto it ships).
NRI_VERSION = "v0.12.2"
_INDEX = re.compile(r"^[0-9]{2}$")
#: Events whose dedicated RPC a plugin may not implement: they fall back to StateChange.
_STATE_EVENTS = {
    api.RUN_POD_SANDBOX,
    api.STOP_POD_SANDBOX,
    api.REMOVE_POD_SANDBOX,
    api.POST_CREATE_CONTAINER,
    api.START_CONTAINER,
    api.POST_START_CONTAINER,
    api.POST_UPDATE_CONTAINER,
    api.REMOVE_CONTAINER,
    api.POST_UPDATE_POD_SANDBOX,
}


class Domain(Protocol):
    """What the host needs from crid: the current state, and a way to change it."""

    async def snapshot(self) -> tuple[list[api.PodSandbox], list[api.Container]]: ...

    async def update_containers(
        self, updates: Sequence[api.ContainerUpdate]
    ) -> list[api.ContainerUpdate]: ...

    async def evict_containers(self, evictions: Sequence[api.ContainerEviction]) -> None: ...


@dataclass(kw_only=True)
class CreateResult:
    """What plugins asked for when a container was created, in plugin order."""

    adjustments: list[tuple[str, api.ContainerAdjustment]] = field(default_factory=list)
    updates: list[api.ContainerUpdate] = field(default_factory=list)
    evictions: list[api.ContainerEviction] = field(default_factory=list)


class _SyncLock:
    """Many event deliveries at once, or one synchronization (which goes first once it
    waits, so a stream of events cannot starve a connecting plugin)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._writers_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._cond:
                self._writer = False
                self._cond.notify_all()


class NRIHost:
    """Hosts NRI plugins for one crid."""

    def __init__(self, options: HostOptions, domain: Domain) -> None:
        self.options = options
        self.domain = domain
        self._plugins: list[PluginLink] = []
        self._connecting: set[PluginLink] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sync = _SyncLock()
        self._stopping = False

    # -- plugin set ---------------------------------------------------------------

    @property
    def plugins(self) -> list[PluginLink]:
        """The synchronized plugins, in the order events reach them."""
        return list(self._plugins)

    @property
    def busy(self) -> bool:
        """Whether some plugin is connected or connecting (and so must see events)."""
        return bool(self._plugins or self._connecting)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def launch(self, plugins: Sequence[InstalledPlugin]) -> None:
        """Start pre-installed plugins; they register in the background."""
        for plugin in plugins:
            try:
                await self._launch(plugin.path, plugin.index, plugin.name)
            except (OSError, NRIError) as err:
                _log.error("cannot start NRI plugin %s: %s", plugin.path, err)

    def _plugin_config(self, index: str, name: str) -> str:
        if not self.options.plugin_config_dir:
            return ""
        directory = Path(self.options.plugin_config_dir)
        for candidate in (directory / f"{index}-{name}.conf", directory / f"{name}.conf"):
            with contextlib.suppress(FileNotFoundError):
                return candidate.read_text()
        return ""

    async def _launch(self, path: Path, index: str, name: str) -> None:
        """Start a pre-installed plugin with one end of a socket pair (its fd number in
        ``NRI_PLUGIN_SOCKET``), as containerd and CRI-O do."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            env = {
                "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                "NRI_PLUGIN_NAME": name,
                "NRI_PLUGIN_IDX": index,
                "NRI_PLUGIN_SOCKET": str(theirs.fileno()),
            }
            process = await asyncio.create_subprocess_exec(
                str(path),
                env=env,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        config = await asyncio.to_thread(self._plugin_config, index, name)
        self._spawn(self._connect(reader, writer, process=process, config=config, expect=name))

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Take a plugin's connection (from the listener of :class:`~crid.nri.hooks.NRIHooks`)."""
        if self._stopping:
            writer.close()
            return
        await self._connect(reader, writer)

    def _runtime_handlers(self, link: PluginLink) -> dict[tuple[str, str], Handler]:
        async def register(request: api.RegisterPluginRequest) -> api.Empty:
            if not request.plugin_name or not _INDEX.match(request.plugin_idx):
                raise StatusError(
                    3,
                    f"invalid plugin registration: name {request.plugin_name!r}, index"
                    f" {request.plugin_idx!r} (want a name and a two-digit index)",
                )
            taken = {(p.index, p.name) for p in self._plugins}
            if (request.plugin_idx, request.plugin_name) in taken:
                raise StatusError(6, f"plugin {request.plugin_idx}-{request.plugin_name} exists")
            if not link.registered.done():
                link.registered.set_result((request.plugin_name, request.plugin_idx))
            return api.Empty()

        async def update(request: api.UpdateContainersRequest) -> api.UpdateContainersResponse:
            if not link.ready:
                raise StatusError(9, "plugin is not synchronized yet")
            failed = await self.domain.update_containers(list(request.update))
            if request.evict:
                self._spawn(self.domain.evict_containers(list(request.evict)))
            return api.UpdateContainersResponse(failed=failed)

        return {
            (RUNTIME_SERVICE, "RegisterPlugin"): method(api.RegisterPluginRequest, register),
            (RUNTIME_SERVICE, "UpdateContainers"): method(api.UpdateContainersRequest, update),
        }

    async def _connect(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        process: asyncio.subprocess.Process | None = None,
        config: str = "",
        expect: str = "",
    ) -> None:
        handlers: dict[tuple[str, str], Handler] = {}
        link = PluginLink(reader, writer, handlers, process=process)
        handlers.update(self._runtime_handlers(link))
        self._connecting.add(link)
        link.start()
        timeout = self.options.registration_timeout
        try:
            try:
                link.name, link.index = await asyncio.wait_for(
                    asyncio.shield(link.registered), timeout
                )
            except TimeoutError:
                raise NRIError(f"NRI plugin did not register within {timeout:g}s") from None
            if expect and link.name != expect:
                _log.info("NRI plugin %s registered as %s", expect, link.name)
            configured = await link.call(
                "Configure",
                api.ConfigureRequest(
                    config=config,
                    runtime_name=self.options.runtime_name,
                    runtime_version=self.options.runtime_version,
                    registration_timeout=int(timeout * 1000),
                    request_timeout=int(self.options.request_timeout * 1000),
                    NRI_version=NRI_VERSION,
                ),
                api.ConfigureResponse,
                timeout,
            )
            link.explicit = bool(configured.events & ALL_EVENTS)
            link.events = (configured.events & ALL_EVENTS) or ALL_EVENTS
            await self._synchronize(link)
            _log.info("NRI plugin %s connected", link.label, extra={"events": hex(link.events)})
        except (NRIError, OSError) as err:
            _log.warning("NRI plugin %s dropped while connecting: %s", link.label, err)
            await link.close()
        finally:
            self._connecting.discard(link)
        if link.ready:
            self._spawn(self._watch(link))

    async def _synchronize(self, link: PluginLink) -> None:
        async with self._sync.exclusive():
            if self._stopping:
                raise NRIClosedError("crid is stopping")
            pods, containers = await self.domain.snapshot()
            reply = await link.call(
                "Synchronize",
                api.SynchronizeRequest(pods=pods, containers=containers, more=False),
                api.SynchronizeResponse,
                self.options.registration_timeout,
            )
            if reply.update:
                failed = await self.domain.update_containers(list(reply.update))
                for update in failed:
                    _log.warning(
                        "NRI plugin %s: sync update of %s failed", link.label, update.container_id
                    )
            link.ready = True
            self._plugins.append(link)
            self._plugins.sort(key=PluginLink.sort_key)

    async def _watch(self, link: PluginLink) -> None:
        """Forget a plugin as soon as its connection closes."""
        await link.mux.wait_closed()
        if link in self._plugins:
            _log.warning("NRI plugin %s disconnected", link.label)
            await self._drop(link)

    async def _drop(self, link: PluginLink) -> None:
        if link in self._plugins:
            self._plugins.remove(link)
        await link.close()

    async def stop(self) -> None:
        """Tell the plugins crid is going down and disconnect them."""
        self._stopping = True
        links = [*self._plugins, *self._connecting]
        self._plugins.clear()
        await asyncio.gather(
            *(link.close(shutdown=True, timeout=self.options.request_timeout) for link in links),
            return_exceptions=True,
        )
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- event delivery -----------------------------------------------------------

    async def _deliver(
        self,
        event: int,
        name: str,
        request: Message,
        response_type: type[M],
        *,
        blocking: bool,
        pod: api.PodSandbox | None = None,
        container: api.Container | None = None,
    ) -> list[tuple[PluginLink, M]]:
        replies: list[tuple[PluginLink, M]] = []
        async with self._sync.shared():
            for link in list(self._plugins):
                if not link.subscribed(event) or not link.alive:
                    continue
                try:
                    reply = await self._call(
                        link, event, name, request, response_type, pod, container
                    )
                except NRIClosedError as err:
                    _log.warning("NRI plugin %s disconnected on %s: %s", link.label, name, err)
                    await self._drop(link)
                    continue
                except NRIPluginError as err:
                    if blocking:
                        raise NRIPluginError(
                            f"NRI plugin {link.label} failed {name}: {err}", code=err.code
                        ) from err
                    _log.warning("NRI plugin %s failed %s: %s", link.label, name, err)
                    continue
                if reply is not None:
                    replies.append((link, reply))
        return replies

    async def _call(
        self,
        link: PluginLink,
        event: int,
        name: str,
        request: Message,
        response_type: type[M],
        pod: api.PodSandbox | None,
        container: api.Container | None,
    ) -> M | None:
        timeout = self.options.request_timeout
        try:
            return await link.call(name, request, response_type, timeout)
        except NRIPluginError as err:
            if err.code != UNIMPLEMENTED:
                raise
            if event not in _STATE_EVENTS:
                if link.explicit:
                    raise
                return None  # subscribed to everything, handles not this one
        change = api.StateChangeEvent(event=event)  # type: ignore[arg-type]
        if pod is not None:
            change.pod.CopyFrom(pod)
        if container is not None:
            change.container.CopyFrom(container)
        try:
            await link.call("StateChange", change, api.Empty, timeout)
        except NRIPluginError as err:
            if err.code != UNIMPLEMENTED or link.explicit:
                raise
        return None

    async def run_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self._deliver(
            api.RUN_POD_SANDBOX,
            "RunPodSandbox",
            api.RunPodSandboxRequest(pod=pod),
            api.RunPodSandboxResponse,
            blocking=True,
            pod=pod,
        )

    async def stop_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self._deliver(
            api.STOP_POD_SANDBOX,
            "StopPodSandbox",
            api.StopPodSandboxRequest(pod=pod),
            api.StopPodSandboxResponse,
            blocking=False,
            pod=pod,
        )

    async def remove_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self._deliver(
            api.REMOVE_POD_SANDBOX,
            "RemovePodSandbox",
            api.RemovePodSandboxRequest(pod=pod),
            api.RemovePodSandboxResponse,
            blocking=False,
            pod=pod,
        )

    async def update_pod_sandbox(
        self, pod: api.PodSandbox, overhead: api.LinuxResources, resources: api.LinuxResources
    ) -> None:
        request = api.UpdatePodSandboxRequest(
            pod=pod, overhead_linux_resources=overhead, linux_resources=resources
        )
        await self._deliver(
            api.UPDATE_POD_SANDBOX,
            "UpdatePodSandbox",
            request,
            api.UpdatePodSandboxResponse,
            blocking=True,
            pod=pod,
        )

    async def post_update_pod_sandbox(self, pod: api.PodSandbox) -> None:
        await self._deliver(
            api.POST_UPDATE_POD_SANDBOX,
            "PostUpdatePodSandbox",
            api.PostUpdatePodSandboxRequest(pod=pod),
            api.PostUpdatePodSandboxResponse,
            blocking=False,
            pod=pod,
        )

    async def create_container(self, pod: api.PodSandbox, ctr: api.Container) -> CreateResult:
        replies = await self._deliver(
            api.CREATE_CONTAINER,
            "CreateContainer",
            api.CreateContainerRequest(pod=pod, container=ctr),
            api.CreateContainerResponse,
            blocking=True,
        )
        result = CreateResult()
        for link, reply in replies:
            if reply.HasField("adjust"):
                result.adjustments.append((link.label, reply.adjust))
            result.updates.extend(reply.update)
            result.evictions.extend(reply.evict)
        await self._validate(pod, ctr, result, [link for link, _ in replies])
        return result

    async def _validate(
        self,
        pod: api.PodSandbox,
        ctr: api.Container,
        result: CreateResult,
        consulted: list[PluginLink],
    ) -> None:
        """Let validator plugins accept or reject what the others asked for."""
        if not any(link.subscribed(api.VALIDATE_CONTAINER_ADJUSTMENT) for link in self._plugins):
            return
        request = api.ValidateContainerAdjustmentRequest(
            pod=pod,
            container=ctr,
            adjust=merge_adjustments(result.adjustments),
            update=result.updates,
            owners=owning_plugins(ctr.id, result.adjustments),
            plugins=[api.PluginInstance(name=link.name, index=link.index) for link in consulted],
        )
        replies = await self._deliver(
            api.VALIDATE_CONTAINER_ADJUSTMENT,
            "ValidateContainerAdjustment",
            request,
            api.ValidateContainerAdjustmentResponse,
            blocking=True,
        )
        for link, reply in replies:
            if reply.reject:
                raise NRIRejectedError(
                    f"NRI plugin {link.label} rejected the adjustments of container"
                    f" {ctr.name!r}: {reply.reason or 'no reason given'}",
                    code=9,
                )

    async def _container_event(
        self, event: int, name: str, request: Message, pod: api.PodSandbox, ctr: api.Container
    ) -> None:
        await self._deliver(event, name, request, api.Empty, blocking=False, pod=pod, container=ctr)

    async def post_create_container(self, pod: api.PodSandbox, ctr: api.Container) -> None:
        request = api.PostCreateContainerRequest(pod=pod, container=ctr)
        await self._container_event(
            api.POST_CREATE_CONTAINER, "PostCreateContainer", request, pod, ctr
        )

    async def start_container(self, pod: api.PodSandbox, ctr: api.Container) -> None:
        request = api.StartContainerRequest(pod=pod, container=ctr)
        await self._container_event(api.START_CONTAINER, "StartContainer", request, pod, ctr)

    async def post_start_container(self, pod: api.PodSandbox, ctr: api.Container) -> None:
        request = api.PostStartContainerRequest(pod=pod, container=ctr)
        await self._container_event(
            api.POST_START_CONTAINER, "PostStartContainer", request, pod, ctr
        )

    async def update_container(
        self, pod: api.PodSandbox, ctr: api.Container, resources: api.LinuxResources
    ) -> tuple[list[api.ContainerUpdate], list[api.ContainerEviction]]:
        replies = await self._deliver(
            api.UPDATE_CONTAINER,
            "UpdateContainer",
            api.UpdateContainerRequest(pod=pod, container=ctr, linux_resources=resources),
            api.UpdateContainerResponse,
            blocking=True,
        )
        updates = [u for _, reply in replies for u in reply.update]
        evictions = [e for _, reply in replies for e in reply.evict]
        return updates, evictions

    async def post_update_container(self, pod: api.PodSandbox, ctr: api.Container) -> None:
        request = api.PostUpdateContainerRequest(pod=pod, container=ctr)
        await self._container_event(
            api.POST_UPDATE_CONTAINER, "PostUpdateContainer", request, pod, ctr
        )

    async def stop_container(
        self, pod: api.PodSandbox, ctr: api.Container
    ) -> list[api.ContainerUpdate]:
        replies = await self._deliver(
            api.STOP_CONTAINER,
            "StopContainer",
            api.StopContainerRequest(pod=pod, container=ctr),
            api.StopContainerResponse,
            blocking=False,
        )
        return [u for _, reply in replies for u in reply.update]

    async def remove_container(self, pod: api.PodSandbox, ctr: api.Container) -> None:
        request = api.RemoveContainerRequest(pod=pod, container=ctr)
        await self._container_event(api.REMOVE_CONTAINER, "RemoveContainer", request, pod, ctr)
