"""Upgraded streaming connections: SPDY/3.1 and WebSocket sessions for exec, attach
and port-forward (loaded by the streaming server at its first connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection
from wsproto.events import Request as WsRequest

from crid.context import Context
from crid.streaming.attach import run_attach
from crid.streaming.channel import Activity, StreamChannel
from crid.streaming.commands import serve_spdy_command, serve_websocket_command
from crid.streaming.exec import run_exec
from crid.streaming.portforward import PROTOCOL as PORTFORWARD_PROTOCOL
from crid.streaming.portforward import serve_port_forward
from crid.streaming.remotecommand import SPDY_PROTOCOLS, WEBSOCKET_PROTOCOLS, CommandIO
from crid.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest, StreamRequest
from crid.streaming.server import respond
from crid.streaming.spdy import Session
from crid.streaming.websocket import TunnelChannel, WebSocket

__all__ = ["TUNNEL_PROTOCOL", "spdy", "websocket"]

TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"


def _negotiate(offered: list[str], supported: tuple[str, ...]) -> str | None:
    return next((protocol for protocol in offered if protocol in supported), None)


async def spdy(
    ctx: Context,
    leftover: bytes,
    offered: list[str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: StreamRequest,
    activity: Activity,
) -> None:
    supported = (
        (PORTFORWARD_PROTOCOL,) if isinstance(request, PortForwardRequest) else SPDY_PROTOCOLS
    )
    protocol = _negotiate(offered, supported)
    if protocol is None:
        await respond(
            writer, 403, f"no supported X-Stream-Protocol-Version in {offered}: {supported}"
        )
        return
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        b"X-Stream-Protocol-Version: " + protocol.encode() + b"\r\n\r\n"
    )
    await writer.drain()
    session = Session(StreamChannel(reader, writer, leftover, activity), client=False)
    await session.start()
    if isinstance(request, PortForwardRequest):
        await serve_port_forward(session, request)
        return
    await serve_spdy_command(
        session,
        protocol,
        stdin=request.stdin,
        stdout=request.stdout,
        stderr=request.stderr,
        tty=request.tty,
        command=_command(ctx, request),
    )


async def websocket(
    ctx: Context,
    raw: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: StreamRequest,
    activity: Activity,
) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(raw)
    handshake = next((e for e in ws.events() if isinstance(e, WsRequest)), None)
    if handshake is None:
        await respond(writer, 400, "bad websocket handshake")
        return
    if isinstance(request, PortForwardRequest):
        supported: tuple[str, ...] = (TUNNEL_PROTOCOL,)
        protocol = _negotiate(handshake.subprotocols, supported)
    else:
        supported = WEBSOCKET_PROTOCOLS
        protocol = (
            _negotiate(handshake.subprotocols, supported)
            if handshake.subprotocols
            else "channel.k8s.io"
        )
    if protocol is None:
        writer.write(ws.send(RejectConnection(status_code=400, has_body=False)))
        await writer.drain()
        return
    writer.write(
        ws.send(AcceptConnection(subprotocol=protocol if handshake.subprotocols else None))
    )
    await writer.drain()
    websocket = WebSocket(ws, reader, writer, activity)
    if isinstance(request, PortForwardRequest):
        session = Session(TunnelChannel(websocket), client=False)
        await session.start()
        await serve_port_forward(session, request)
        return
    await serve_websocket_command(
        websocket,
        protocol,
        stdin=request.stdin,
        stdout=request.stdout,
        stderr=request.stderr,
        tty=request.tty,
        command=_command(ctx, request),
    )


def _command(
    ctx: Context, request: ExecRequest | AttachRequest
) -> Callable[[CommandIO], Awaitable[int | None]]:
    if isinstance(request, ExecRequest):
        return lambda io: run_exec(ctx, request, io)
    return lambda io: run_attach(ctx, request, io)
