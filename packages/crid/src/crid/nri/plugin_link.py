"""One connected NRI plugin, as the runtime sees it: its mux, its two ttrpc ends.

The runtime is the ttrpc *client* of the Plugin service on connection 1 and the
*server* of the Runtime service on connection 2. A call that times out, or finds the
connection gone, marks the plugin dead: :meth:`PluginLink.call` then raises
:class:`~crid.errors.NRIClosedError` and the host drops the plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.message import Message

from crid._nri.v1alpha1 import api_pb2 as api
from crid.errors import NRIClosedError, NRITimeoutError
from crid.nri.mux import PLUGIN_SERVICE_CONN, RUNTIME_SERVICE_CONN, Multiplexer
from crid.nri.ttrpc import Client, Handler, Server

__all__ = ["PLUGIN_SERVICE", "RUNTIME_SERVICE", "PluginLink", "event_mask"]

_log = logging.getLogger(__name__)

PLUGIN_SERVICE = "nri.pkg.api.v1alpha1.Plugin"
RUNTIME_SERVICE = "nri.pkg.api.v1alpha1.Runtime"
#: Every event a plugin may subscribe to.
ALL_EVENTS = (1 << (api.LAST - 1)) - 1

M = TypeVar("M", bound=Message)


def event_mask(*events: int) -> int:
    """The ConfigureResponse bit mask of ``events`` (bit ``event - 1``)."""
    mask = 0
    for event in events:
        mask |= 1 << (event - 1)
    return mask


class PluginLink:
    """A plugin connection: registration state, subscriptions and calls."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        runtime_handlers: Mapping[tuple[str, str], Handler],
        *,
        process: asyncio.subprocess.Process | None = None,
    ) -> None:
        self.mux = Multiplexer(reader, writer)
        self.client = Client(self.mux.open(PLUGIN_SERVICE_CONN), name="nri-runtime")
        self.server = Server(
            self.mux.open(RUNTIME_SERVICE_CONN), runtime_handlers, name="nri-runtime"
        )
        self.process = process
        self.name = ""
        self.index = ""
        self.events = 0
        #: Whether the plugin named its events (False: it asked for all of them).
        self.explicit = False
        self.registered: asyncio.Future[tuple[str, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self.ready = False
        self._dead = False

    def start(self) -> None:
        self.mux.start()
        self.client.start()
        self.server.start()

    @property
    def label(self) -> str:
        return f"{self.index}-{self.name}" if self.name else "unregistered plugin"

    @property
    def alive(self) -> bool:
        return not self._dead and not self.mux.closed

    def subscribed(self, event: int) -> bool:
        return bool(self.events & event_mask(event))

    def sort_key(self) -> tuple[str, str]:
        return (self.index, self.name)

    async def call(
        self, method: str, request: Message, response_type: type[M], timeout: float
    ) -> M:
        """Call ``method`` of the plugin; a timeout or lost connection kills the link."""
        if not self.alive:
            raise NRIClosedError(f"NRI plugin {self.label} is disconnected")
        try:
            return await self.client.call(
                PLUGIN_SERVICE, method, request, response_type, timeout=timeout
            )
        except (NRITimeoutError, NRIClosedError) as err:
            self._dead = True
            raise NRIClosedError(f"NRI plugin {self.label}: {err}") from err

    async def close(self, *, shutdown: bool = False, timeout: float = 1.0) -> None:
        """Disconnect (telling the plugin first when ``shutdown``); reaps a plugin crid
        started itself."""
        if shutdown and self.alive and self.ready:
            with contextlib.suppress(Exception):
                await self.call("Shutdown", api.Empty(), api.Empty, timeout)
        self._dead = True
        await self.client.close()
        await self.server.close()
        await self.mux.close()
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
