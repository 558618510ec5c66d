"""A fault-injecting HTTP proxy in front of a real registry, for failure-path tests.

:class:`FaultyProxy` listens on 127.0.0.1 and forwards every request to an upstream
registry (e.g. a :class:`~ociimage.testing.LocalRegistry`), except that requests
matching a :class:`Fault` are answered with an error status, cut off, stalled,
corrupted or redirected, as many times as the fault says. Every request is recorded
(method, path, headers) so tests can assert what a client sent.

It also plays a hostile registry: bodies far larger than anything a client should hold
(streamed from a small buffer, so the proxy itself stays small), compressed answers the
client did not ask for, bodies longer than their descriptor, redirect loops, and slow
answers (to hold a download in flight while a test starts another pull).
"""

from __future__ import annotations

import gzip
import http.server
import re
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx

__all__ = ["Fault", "FaultyProxy", "RecordedRequest"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "trailer",
    "host",
    "content-length",
}


@dataclass(kw_only=True)
class Fault:
    """What to do to matching requests.

    ``path`` is a regex searched in the request path; ``method`` matches exactly when
    set; ``times`` is how many requests it hits (None: all). Exactly one effect:

    * ``status``: answer with it (and ``headers``, e.g. ``Retry-After`` or
      ``WWW-Authenticate``) instead of forwarding; the body is a distribution error, or
      ``body`` when given, or ``flood`` filler bytes sent without a Content-Length (the
      connection then closes) unless ``announce`` is set;
    * ``drop_after``: forward, send this many body bytes, then close the connection;
    * ``stall_after``: forward, send this many body bytes, then hang for ``stall_seconds``;
    * ``corrupt``: forward with one body byte flipped (the length stays the same);
    * ``encode``: forward with the body gzip-compressed and ``Content-Encoding: gzip``;
    * ``append``: forward with these bytes added to the body (and to Content-Length);
    * ``redirect``: answer 307 to ``redirect`` + the request path; ``loop``: answer 307
      to the very same URL, forever.

    ``delay`` seconds pass before any of it (or before forwarding, with no other effect).
    """

    path: str
    method: str | None = None
    times: int | None = 1
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 30.0
    corrupt: bool = False
    redirect: str | None = None
    body: bytes | None = None
    flood: int | None = None
    announce: bool = False
    encode: bool = False
    append: bytes = b""
    loop: bool = False
    delay: float = 0.0
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return re.search(self.path, path) is not None


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """A request the proxy saw."""

    method: str
    path: str
    headers: dict[str, str]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        proxy.record(RecordedRequest(method=self.command, path=self.path, headers=headers))
        fault = proxy.take_fault(self.command, self.path)
        if fault is not None and fault.delay:
            proxy.stalled.wait(fault.delay)
        if fault is not None and fault.status is not None:
            if fault.flood is not None:
                self._flood(fault)
                return
            payload = fault.body
            if payload is None:
                payload = b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
            self.send_response(fault.status)
            for k, v in fault.headers.items():
                self.send_header(k, v)
            if "content-type" not in {k.lower() for k in fault.headers}:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if fault is not None and (fault.redirect is not None or fault.loop):
            self.send_response(307)
            target = proxy.url if fault.loop else fault.redirect
            self.send_header("Location", f"{target}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        forward = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        with proxy.upstream.stream(
            self.command, self.path, headers=forward, content=body
        ) as response:
            self.send_response(response.status_code)
            for k, v in response.headers.multi_items():
                if k.lower() not in _HOP_BY_HOP:
                    self.send_header(k, v)
            data = response.read()
            if fault is not None and fault.encode:
                data = gzip.compress(data)
                self.send_header("Content-Encoding", "gzip")
            data += fault.append if fault is not None else b""
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
        if self.command == "HEAD":
            return
        if fault is not None and fault.corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if fault is not None and fault.drop_after is not None:
            self.wfile.write(data[: fault.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        if fault is not None and fault.stall_after is not None:
            self.wfile.write(data[: fault.stall_after])
            self.wfile.flush()
            proxy.stalled.wait(fault.stall_seconds)
            self.close_connection = True
            return
        self.wfile.write(data)

    def _flood(self, fault: Fault) -> None:
        """``fault.flood`` filler bytes from one small buffer, until the client hangs up."""
        assert fault.flood is not None and fault.status is not None
        self.send_response(fault.status)
        for k, v in fault.headers.items():
            self.send_header(k, v)
        if fault.announce:
            self.send_header("Content-Length", str(fault.flood))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        chunk = b"x" * (64 << 10)
        left = fault.flood
        try:
            while left > 0:
                self.wfile.write(chunk[:left])
                left -= len(chunk)
        except OSError:
            pass  # the client stopped reading, as it should

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultyProxy


class FaultyProxy:
    """A loopback proxy to ``upstream_url`` that injects :class:`Fault`\\ s.

    ``bind`` may be another loopback address (``127.0.0.2``) to act as a second host.
    """

    def __init__(self, upstream_url: str, *, bind: str = "127.0.0.1") -> None:
        self.upstream_url = upstream_url
        self.bind = bind
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.upstream = httpx.Client(base_url=upstream_url, timeout=60, follow_redirects=False)

    @property
    def host(self) -> str:
        """``ADDR:PORT`` for image references."""
        if self._server is None:
            raise RuntimeError("proxy not started")
        return f"{self.bind}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def add(self, fault: Fault) -> Fault:
        """Arm ``fault``; returns it (its ``hits`` count as it fires)."""
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault and forget the recorded requests."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> Self:
        server = _Server((self.bind, 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stalled.set()  # release stalled handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.upstream.close()
        time.sleep(0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
