"""crid's streaming server: Exec, Attach and PortForward over SPDY/3.1 and WebSocket."""

from crid.streaming.requests import AttachRequest, ExecRequest, PortForwardRequest, StreamRequest
from crid.streaming.server import ServerOptions, StreamingServer
from crid.streaming.tokens import TokenCache

__all__ = [
    "AttachRequest",
    "ExecRequest",
    "PortForwardRequest",
    "ServerOptions",
    "StreamRequest",
    "StreamingServer",
    "TokenCache",
]
