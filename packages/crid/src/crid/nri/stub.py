"""The plugin side of NRI, for writing plugins in Python (against crid or any NRI runtime).

Subclass :class:`Plugin`, override the events you want (the subscription follows from
what you override), and run it with :class:`Stub`::

    class Tagger(Plugin):
        async def create_container(self, pod, container):
            adjust = api.ContainerAdjustment()
            adjust.annotations["example.com/tagged"] = "yes"
            return adjust

    asyncio.run(Stub(Tagger(), name="tagger", index="10").run())

A plugin crid starts itself from its plugin directory finds its socket in
``NRI_PLUGIN_SOCKET`` (a file descriptor number) and its name and index in
``NRI_PLUGIN_NAME`` and ``NRI_PLUGIN_IDX``; :class:`Stub` uses them when present.
Nothing here starts or needs the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Sequence

from crid._nri.v1alpha1 import api_pb2 as api
from crid.errors import NRIError
from crid.nri.mux import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Multiplexer
from crid.nri.plugin_link import ALL_EVENTS, PLUGIN_SERVICE, RUNTIME_SERVICE, event_mask
from crid.nri.ttrpc import Client, Handler, Server, method

__all__ = ["DEFAULT_SOCKET", "Plugin", "Stub"]

DEFAULT_SOCKET = "/var/run/nri/nri.sock"

_Updates = list[api.ContainerUpdate]


class Plugin:
    """Override the methods for the events a plugin handles; the defaults do nothing.

    Raising from a handler answers the runtime with an error: for RunPodSandbox,
    CreateContainer and UpdateContainer that fails the CRI call.
    """

    #: Events to subscribe to; None derives them from the overridden methods.
    events: frozenset[int] | None = None

    async def configure(self, config: str, runtime_name: str, runtime_version: str) -> None:
        """Called once after registration, with the plugin's configuration text."""

    async def synchronize(
        self, pods: Sequence[api.PodSandbox], containers: Sequence[api.Container]
    ) -> _Updates | None:
        """The runtime's pods and containers when the plugin joins."""
        return None

    async def shutdown(self) -> None:
        """The runtime is going down."""

    async def run_pod_sandbox(self, pod: api.PodSandbox) -> None: ...

    async def stop_pod_sandbox(self, pod: api.PodSandbox) -> None: ...

    async def remove_pod_sandbox(self, pod: api.PodSandbox) -> None: ...

    async def update_pod_sandbox(
        self, pod: api.PodSandbox, overhead: api.LinuxResources, resources: api.LinuxResources
    ) -> None:
        """Before UpdatePodSandboxResources writes the pod cgroup (raising refuses it)."""

    async def post_update_pod_sandbox(self, pod: api.PodSandbox) -> None:
        """After the pod cgroup's limits were updated."""

    async def create_container(
        self, pod: api.PodSandbox, container: api.Container
    ) -> api.ContainerAdjustment | api.CreateContainerResponse | None:
        return None

    async def post_create_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        """After the container was created."""

    async def start_container(self, pod: api.PodSandbox, container: api.Container) -> None: ...

    async def post_start_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        """After the container was started."""

    async def update_container(
        self, pod: api.PodSandbox, container: api.Container, resources: api.LinuxResources
    ) -> _Updates | None:
        return None

    async def post_update_container(self, pod: api.PodSandbox, container: api.Container) -> None:
        """After the container's resources were updated."""

    async def stop_container(
        self, pod: api.PodSandbox, container: api.Container
    ) -> _Updates | None:
        return None

    async def remove_container(self, pod: api.PodSandbox, container: api.Container) -> None: ...

    async def validate_container_adjustment(
        self, request: api.ValidateContainerAdjustmentRequest
    ) -> str | None:
        """Judge the other plugins' adjustments (``request.owners`` says whose):
        None accepts, a reason rejects and fails the container's creation."""
        return None


_HANDLERS = {
    "run_pod_sandbox": api.RUN_POD_SANDBOX,
    "stop_pod_sandbox": api.STOP_POD_SANDBOX,
    "remove_pod_sandbox": api.REMOVE_POD_SANDBOX,
    "update_pod_sandbox": api.UPDATE_POD_SANDBOX,
    "post_update_pod_sandbox": api.POST_UPDATE_POD_SANDBOX,
    "create_container": api.CREATE_CONTAINER,
    "post_create_container": api.POST_CREATE_CONTAINER,
    "start_container": api.START_CONTAINER,
    "post_start_container": api.POST_START_CONTAINER,
    "update_container": api.UPDATE_CONTAINER,
    "post_update_container": api.POST_UPDATE_CONTAINER,
    "stop_container": api.STOP_CONTAINER,
    "remove_container": api.REMOVE_CONTAINER,
    "validate_container_adjustment": api.VALIDATE_CONTAINER_ADJUSTMENT,
}


def subscriptions(plugin: Plugin) -> int:
    """The event mask ``plugin`` asks for."""
    if plugin.events is not None:
        return event_mask(*plugin.events) & ALL_EVENTS
    chosen = [
        event
        for name, event in _HANDLERS.items()
        if getattr(type(plugin), name) is not getattr(Plugin, name)
    ]
    return event_mask(*chosen)


class Stub:
    """Connects a :class:`Plugin` to a runtime and serves its events."""

    def __init__(
        self,
        plugin: Plugin,
        *,
        name: str = "",
        index: str = "",
        socket_path: str = "",
    ) -> None:
        self.plugin = plugin
        self.name = name or os.environ.get("NRI_PLUGIN_NAME", "")
        self.index = index or os.environ.get("NRI_PLUGIN_IDX", "")
        self.socket_path = socket_path or DEFAULT_SOCKET
        if not self.name or len(self.index) != 2 or not self.index.isdigit():
            raise NRIError(f"an NRI plugin needs a name and a two-digit index (got {index!r})")
        self.synchronized = asyncio.Event()
        self._mux: Multiplexer | None = None
        self._client: Client | None = None
        self._server: Server | None = None

    def _handlers(self) -> dict[tuple[str, str], Handler]:
        plugin = self.plugin

        async def configure(request: api.ConfigureRequest) -> api.ConfigureResponse:
            await plugin.configure(request.config, request.runtime_name, request.runtime_version)
            return api.ConfigureResponse(events=subscriptions(plugin))

        async def synchronize(request: api.SynchronizeRequest) -> api.SynchronizeResponse:
            updates = await plugin.synchronize(list(request.pods), list(request.containers))
            if not request.more:
                self.synchronized.set()
            return api.SynchronizeResponse(update=updates or [])

        async def shutdown(_: api.Empty) -> api.Empty:
            await plugin.shutdown()
            return api.Empty()

        async def create(request: api.CreateContainerRequest) -> api.CreateContainerResponse:
            result = await plugin.create_container(request.pod, request.container)
            if isinstance(result, api.CreateContainerResponse):
                return result
            reply = api.CreateContainerResponse()
            if result is not None:
                reply.adjust.CopyFrom(result)
            return reply

        async def update(request: api.UpdateContainerRequest) -> api.UpdateContainerResponse:
            updates = await plugin.update_container(
                request.pod, request.container, request.linux_resources
            )
            return api.UpdateContainerResponse(update=updates or [])

        async def stop(request: api.StopContainerRequest) -> api.StopContainerResponse:
            updates = await plugin.stop_container(request.pod, request.container)
            return api.StopContainerResponse(update=updates or [])

        async def validate(
            request: api.ValidateContainerAdjustmentRequest,
        ) -> api.ValidateContainerAdjustmentResponse:
            reason = await plugin.validate_container_adjustment(request)
            return api.ValidateContainerAdjustmentResponse(
                reject=reason is not None, reason=reason or ""
            )

        async def update_pod(request: api.UpdatePodSandboxRequest) -> api.UpdatePodSandboxResponse:
            await plugin.update_pod_sandbox(
                request.pod, request.overhead_linux_resources, request.linux_resources
            )
            return api.UpdatePodSandboxResponse()

        async def state_change(event: api.StateChangeEvent) -> api.Empty:
            name = next((n for n, e in _HANDLERS.items() if e == event.event), None)
            if name in (None, "validate_container_adjustment", "update_pod_sandbox"):
                return api.Empty()
            handler = getattr(plugin, name)
            assert name is not None
            if "pod_sandbox" in name:
                await handler(event.pod)
            else:
                await handler(event.pod, event.container)
            return api.Empty()

        def pod_event(name: str, request_type: type[api.RunPodSandboxRequest]) -> Handler:
            async def handle(request: api.RunPodSandboxRequest) -> api.Empty:
                await getattr(plugin, name)(request.pod)
                return api.Empty()

            return method(request_type, handle)

        def container_event(name: str, request_type: type[api.StartContainerRequest]) -> Handler:
            async def handle(request: api.StartContainerRequest) -> api.Empty:
                await getattr(plugin, name)(request.pod, request.container)
                return api.Empty()

            return method(request_type, handle)

        table: dict[str, Handler] = {
            "Configure": method(api.ConfigureRequest, configure),
            "Synchronize": method(api.SynchronizeRequest, synchronize),
            "Shutdown": method(api.Empty, shutdown),
            "CreateContainer": method(api.CreateContainerRequest, create),
            "UpdateContainer": method(api.UpdateContainerRequest, update),
            "StopContainer": method(api.StopContainerRequest, stop),
            "StateChange": method(api.StateChangeEvent, state_change),
            "ValidateContainerAdjustment": method(api.ValidateContainerAdjustmentRequest, validate),
            "RunPodSandbox": pod_event("run_pod_sandbox", api.RunPodSandboxRequest),
            "StopPodSandbox": pod_event("stop_pod_sandbox", api.StopPodSandboxRequest),  # type: ignore[arg-type]
            "RemovePodSandbox": pod_event("remove_pod_sandbox", api.RemovePodSandboxRequest),  # type: ignore[arg-type]
            "UpdatePodSandbox": method(api.UpdatePodSandboxRequest, update_pod),
            "PostUpdatePodSandbox": pod_event(
                "post_update_pod_sandbox",
                api.PostUpdatePodSandboxRequest,  # type: ignore[arg-type]
            ),
            "PostCreateContainer": container_event(
                "post_create_container",
                api.PostCreateContainerRequest,  # type: ignore[arg-type]
            ),
            "StartContainer": container_event("start_container", api.StartContainerRequest),
            "PostStartContainer": container_event(
                "post_start_container",
                api.PostStartContainerRequest,  # type: ignore[arg-type]
            ),
            "PostUpdateContainer": container_event(
                "post_update_container",
                api.PostUpdateContainerRequest,  # type: ignore[arg-type]
            ),
            "RemoveContainer": container_event(
                "remove_container",
                api.RemoveContainerRequest,  # type: ignore[arg-type]
            ),
        }
        return {(PLUGIN_SERVICE, name): handler for name, handler in table.items()}

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        inherited = os.environ.get("NRI_PLUGIN_SOCKET")
        if inherited:
            sock = socket.socket(fileno=int(inherited))
            return await asyncio.open_unix_connection(sock=sock)
        return await asyncio.open_unix_connection(self.socket_path)

    async def connect(self, *, timeout: float = 10.0) -> None:
        """Connect and register; returns once the runtime has synchronized the plugin."""
        reader, writer = await self._open()
        self._mux = Multiplexer(reader, writer)
        self._server = Server(
            self._mux.open(PLUGIN_SERVICE_CONN), self._handlers(), name="nri-plugin"
        )
        self._client = Client(self._mux.open(RUNTIME_SERVICE_CONN), name="nri-plugin")
        self._mux.start()
        self._server.start()
        self._client.start()
        await self._client.call(
            RUNTIME_SERVICE,
            "RegisterPlugin",
            api.RegisterPluginRequest(plugin_name=self.name, plugin_idx=self.index),
            api.Empty,
            timeout=timeout,
        )
        waiter = asyncio.ensure_future(self.synchronized.wait())
        closed = asyncio.ensure_future(self._mux.wait_closed())
        try:
            await asyncio.wait(
                {waiter, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            closed.cancel()
        if not self.synchronized.is_set():
            raise NRIError(f"NRI plugin {self.index}-{self.name}: runtime did not synchronize it")

    async def update_containers(
        self,
        updates: Sequence[api.ContainerUpdate],
        evictions: Sequence[api.ContainerEviction] = (),
        *,
        timeout: float = 10.0,
    ) -> list[api.ContainerUpdate]:
        """Ask the runtime to update (or evict) containers; returns the failed updates."""
        if self._client is None:
            raise NRIError("the plugin is not connected")
        reply = await self._client.call(
            RUNTIME_SERVICE,
            "UpdateContainers",
            api.UpdateContainersRequest(update=updates, evict=evictions),
            api.UpdateContainersResponse,
            timeout=timeout,
        )
        return list(reply.failed)

    async def wait_closed(self) -> None:
        if self._mux is not None:
            await self._mux.wait_closed()

    async def run(self) -> None:
        """Connect, then serve until the runtime disconnects."""
        await self.connect()
        await self.wait_closed()

    async def close(self) -> None:
        for part in (self._client, self._server, self._mux):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.close()
