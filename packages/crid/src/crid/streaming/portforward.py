"""Port forwarding (``portforward.k8s.io``): TCP connections inside a pod's network namespace.

The client opens, per connection, an ``error`` and a ``data`` SPDY stream carrying the
same ``requestid`` and ``port`` headers. Once both are there, crid connects to the port
on the pod's loopback from inside its network namespace and copies both ways until
either side finishes; a failure (nothing listening) is written to the error stream.
Connections are independent: many run at once on one session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from crid.streaming.requests import PortForwardRequest
from crid.streaming.spdy import Session, Stream
from ocinet import Namespace, NamespaceKind

__all__ = ["PROTOCOL", "serve_port_forward"]

_log = logging.getLogger(__name__)
PROTOCOL = "portforward.k8s.io"
MAX_PENDING = 256  # connections with only one of their two streams opened so far


@dataclass
class _Pair:
    data: Stream | None = None
    error: Stream | None = None
    started: bool = False


async def _connect(netns: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    namespace = Namespace(kind=NamespaceKind.NET, path=Path(netns))
    try:
        return await namespace.open_connection("127.0.0.1", port)
    except OSError:
        return await namespace.open_connection("::1", port)


async def _copy_to_pod(stream: Stream, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await stream.read():
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _copy_from_pod(reader: asyncio.StreamReader, stream: Stream) -> None:
    try:
        while data := await reader.read(65536):
            await stream.write(data)
    except (ConnectionError, OSError):
        pass
    with contextlib.suppress(ConnectionError):
        await stream.close()


async def _forward(request: PortForwardRequest, pair: _Pair, port: int) -> None:
    assert pair.data is not None and pair.error is not None
    data, error = pair.data, pair.error
    try:
        if request.ports and port not in request.ports:
            raise ConnectionRefusedError(f"port {port} was not requested")
        reader, writer = await _connect(request.netns, port)
    except (OSError, ValueError) as err:
        message = (
            f"error forwarding port {port} to pod {request.sandbox_id}: "
            f"failed to connect to localhost:{port} inside the pod's network namespace: {err}"
        )
        with contextlib.suppress(ConnectionError):
            await error.write(message.encode())
            await error.close()
            await data.close()
        return
    try:
        inbound = asyncio.create_task(_copy_to_pod(data, writer))
        await _copy_from_pod(reader, data)
        # The pod's side has finished: the connection is over, whatever the client still
        # sends (as the kubelet does; clients do not half-close their data streams).
        inbound.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await inbound
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        with contextlib.suppress(ConnectionError):
            await error.close()


def _parse_port(stream: Stream) -> int:
    port = int(stream.header("port"))
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return port


async def serve_port_forward(session: Session, request: PortForwardRequest) -> None:
    """Serve every connection the client opens until the session ends."""
    reader = asyncio.create_task(session.run())
    pairs: dict[str, _Pair] = {}
    tasks: set[asyncio.Task[None]] = set()
    try:
        while (stream := await session.accept()) is not None:
            kind, request_id = stream.header("streamtype"), stream.header("requestid")
            try:
                port = _parse_port(stream)
            except ValueError:
                await stream.reset()
                continue
            if kind not in ("data", "error") or not request_id:
                await stream.reset()
                continue
            if request_id not in pairs and len(pairs) >= MAX_PENDING:
                await stream.reset()  # too many half-opened connections
                continue
            await stream.reply()
            pair = pairs.setdefault(request_id, _Pair())
            if getattr(pair, kind) is not None:
                await stream.reset()
                continue
            setattr(pair, kind, stream)
            if pair.data is not None and pair.error is not None and not pair.started:
                pair.started = True
                pairs.pop(request_id, None)
                task = asyncio.create_task(_forward(request, pair, port))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
