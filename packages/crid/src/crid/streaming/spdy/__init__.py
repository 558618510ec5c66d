"""SPDY/3.1: frame codec (with the SPDY/3 header dictionary) and sessions with flow control."""

from crid.streaming.spdy.frames import FrameEncoder, FrameParser, RstStatus
from crid.streaming.spdy.session import DEFAULT_WINDOW, Session, Stream, StreamResetError

__all__ = [
    "DEFAULT_WINDOW",
    "FrameEncoder",
    "FrameParser",
    "RstStatus",
    "Session",
    "Stream",
    "StreamResetError",
]
