"""The remote-command protocols' shared part: the streams a command gets, and its status.

Both transports (SPDY streams, WebSocket channels) hand a backend (exec, attach) a
:class:`CommandIO`; when the backend returns, the exit is reported on the error stream
the way the negotiated protocol defines: v4 and later send a JSON ``metav1.Status``
(``NonZeroExitCode`` with an ``ExitCode`` cause), older ones a plain message on failure.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "SPDY_PROTOCOLS",
    "WEBSOCKET_PROTOCOLS",
    "CommandIO",
    "Reader",
    "TerminalSize",
    "Writer",
    "exit_status",
    "failure_status",
    "resize_events",
    "structured_status",
]

# Newest first: a client's first offer that is in these lists wins.
SPDY_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
WEBSOCKET_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "base64.channel.k8s.io",
    "channel.k8s.io",
)


class Reader(Protocol):
    async def read(self) -> bytes:
        """The next bytes; empty at end of stream."""
        ...


class Writer(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class TerminalSize:
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class CommandIO:
    """The client's streams for one command; None where the client asked for none."""

    stdin: Reader | None
    stdout: Writer | None
    stderr: Writer | None
    resize: Reader | None
    tty: bool


def structured_status(protocol: str) -> bool:
    """Whether ``protocol`` reports exits as JSON Status objects (v4 and later)."""
    return protocol.startswith(("v4.", "v5."))


def exit_status(code: int, *, structured: bool) -> bytes:
    """What the error stream carries for a command that exited with ``code``."""
    if code == 0:
        return b'{"metadata":{},"status":"Success"}' if structured else b""
    message = f"command terminated with non-zero exit code: exit status {code}"
    if not structured:
        return message.encode()
    status = {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
    return json.dumps(status, separators=(",", ":")).encode()


def failure_status(message: str, *, structured: bool) -> bytes:
    """What the error stream carries when the command could not run at all."""
    if not structured:
        return message.encode()
    status = {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}
    return json.dumps(status, separators=(",", ":")).encode()


async def resize_events(reader: Reader) -> AsyncIterator[TerminalSize]:
    """Decode the resize stream: consecutive JSON objects ``{"Width": w, "Height": h}``."""
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        data = await reader.read()
        if not data:
            return
        buffer += data.decode(errors="replace")
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                value, end = decoder.raw_decode(buffer)
            except ValueError:
                if len(buffer) > 4096:
                    return  # garbage, not a resize stream
                break
            buffer = buffer[end:]
            with contextlib.suppress(KeyError, TypeError, ValueError):
                size = TerminalSize(width=int(value["Width"]), height=int(value["Height"]))
                if 0 < size.width < 65536 and 0 < size.height < 65536:
                    yield size
