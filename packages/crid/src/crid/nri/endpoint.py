"""What crid needs of NRI before any plugin comes: its options, its socket, the plugin dir.

Nothing here loads the protocol (the NRI messages, ttrpc, the host), so a crid with NRI
enabled but no plugin keeps all of that out of memory: :class:`crid.nri.hooks.NRIHooks`
listens with :func:`listen` and loads the host when the first plugin connects or is
found installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import crid.socket
from crid import __version__
from crid.errors import CridError, NRIError, SocketInUseError

__all__ = [
    "HostOptions",
    "InstalledPlugin",
    "installed_plugins",
    "listen",
    "prepare_socket",
    "stop_listening",
]

_log = logging.getLogger(__name__)

_PLUGIN_FILE = re.compile(r"^(?P<index>[0-9]{2})-(?P<name>[A-Za-z0-9_.-]+)$")

Connected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class HostOptions:
    """``[crid.nri]`` as the host uses it (durations in seconds)."""

    socket_path: str
    plugin_dir: str = ""
    plugin_config_dir: str = ""
    registration_timeout: float = 5.0
    request_timeout: float = 2.0
    disable_connections: bool = False
    runtime_name: str = "crid"
    runtime_version: str = __version__


@dataclass(frozen=True)
class InstalledPlugin:
    """An executable ``NN-name`` in the plugin dir, which crid starts itself."""

    path: Path
    index: str
    name: str


def installed_plugins(plugin_dir: str) -> list[InstalledPlugin]:
    """The pre-installed plugins, in name order (blocking: call it from a thread)."""
    directory = Path(plugin_dir) if plugin_dir else None
    if directory is None or not directory.is_dir():
        return []
    found = []
    for entry in sorted(directory.iterdir()):
        match = _PLUGIN_FILE.match(entry.name)
        if match is None or not entry.is_file() or not os.access(entry, os.X_OK):
            _log.warning("NRI plugin dir: ignoring %s (not an executable NN-name)", entry)
            continue
        found.append(InstalledPlugin(entry, match["index"], match["name"]))
    return found


async def listen(path: Path, connected: Connected) -> asyncio.AbstractServer:
    """Listen on the NRI socket (mode 0600); ``connected`` gets each plugin's connection."""
    await asyncio.to_thread(prepare_socket, path)
    server = await asyncio.start_unix_server(connected, path=str(path))
    await asyncio.to_thread(path.chmod, 0o600)
    _log.info("NRI listening", extra={"socket": str(path)})
    return server


async def stop_listening(server: asyncio.AbstractServer, path: Path) -> None:
    """Close the listener and remove its socket."""
    server.close()
    with contextlib.suppress(Exception):  # a connection's error must not stop the shutdown
        await server.wait_closed()
    await asyncio.to_thread(path.unlink, missing_ok=True)


def prepare_socket(path: Path) -> None:
    """Make the socket's directory (0700); remove a stale socket, refuse a live one."""
    try:
        crid.socket.prepare_socket(path, parent_mode=0o700)
    except SocketInUseError as err:
        raise NRIError(f"NRI socket {path} is in use by another runtime") from err
    except CridError as err:
        raise NRIError(f"NRI socket: {err}") from err
