"""Layer bodies read by a worker thread on a blocking socket, into one reused buffer.

On the event loop every received chunk of a layer crosses asyncio's transport,
httpcore and h11 (each copying it) and then hops to a thread to be hashed and
written, all of it under the GIL. Here one thread per download does ``recv_into`` a
1 MiB buffer, hashes and writes the filled part: the three calls release the GIL, so
concurrent downloads use every core, and each byte is copied once (kernel to buffer).

Only the common case runs here: a GET answered 200 or 206, after any redirects
(``Authorization`` is sent only to the origin it was meant for, as httpx does). Any
other answer raises :class:`Declined`, and the caller sends the request again through
httpx, which owns authentication challenges, retries and error reports; so both
paths fail alike. Connections are kept alive per origin for the next blob.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

__all__ = ["Answer", "BodyRequest", "BodyTooLong", "Declined", "ThreadedBodies", "Transfer"]

#: Bytes per ``recv_into``: large enough that per-call overhead vanishes.
BUFFER_BYTES = 1 << 20
_MAX_REDIRECTS = 10
_MAX_IDLE_PER_ORIGIN = 8
_REDIRECTS = (301, 302, 303, 307, 308)

_Origin = tuple[str, str, int]


class Declined(Exception):  # noqa: N818 - a hand-over, not a failure
    """The registry answered something other than the body: let httpx send it again."""

    def __init__(self, status: int, url: str, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.retry_after = retry_after


class BodyTooLong(Exception):  # noqa: N818 - the caller words the error
    """The body is longer than the caller's limit: nothing past the limit was consumed.
    ``announced`` is the length its headers declared (None: seen while reading)."""

    def __init__(self, announced: int | None = None) -> None:
        super().__init__(f"{announced} bytes announced" if announced else "longer than allowed")
        self.announced = announced


# Plain classes, not dataclasses: a dataclass costs an importer about a millisecond
# (it compiles its methods), and ``ociimage pull`` imports this module at start.


class BodyRequest:
    """A GET for the body from byte ``offset`` on, of which at most ``limit`` bytes may
    be consumed. A registry that ignores ``Range`` (200) has its first bytes dropped."""

    __slots__ = ("headers", "limit", "offset", "url")

    def __init__(self, *, url: str, headers: dict[str, str], limit: int, offset: int = 0) -> None:
        self.url = url
        self.headers = headers
        self.limit = limit
        self.offset = offset


class Answer:
    """A 200 answer read whole: lower-case header names, the body, the final URL."""

    __slots__ = ("body", "headers", "url")

    def __init__(self, *, headers: dict[str, str], body: bytes, url: str) -> None:
        self.headers = headers
        self.body = body
        self.url = url


class Transfer:
    """One download's handle: :meth:`abort` (from any thread) stops it promptly.

    Once :meth:`abort` has returned, the worker calls ``consume`` no more (a call in
    progress finishes first): the caller may discard what it was writing at once,
    without waiting for the thread, which may still be connecting.
    """

    def __init__(self) -> None:
        self.aborted = False
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._socket is not None:
                # wakes a recv blocked in the worker thread; the connection is dropped
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)

    def guarded(self, consume: Callable[[memoryview], None]) -> Callable[[memoryview], None]:
        """``consume``, never called once :meth:`abort` has returned."""

        def call(view: memoryview) -> None:
            with self._lock:
                if self.aborted:
                    raise ConnectionAbortedError("the download was cancelled")
                consume(view)

        return call

    @contextlib.contextmanager
    def watching(self, conn: http.client.HTTPConnection) -> Iterator[None]:
        with self._lock:
            if self.aborted:
                raise ConnectionAbortedError("the download was cancelled")
            self._socket = conn.sock
        try:
            yield
        except Exception as err:
            if self.aborted:  # whatever the shut-down socket made the read raise
                raise ConnectionAbortedError("the download was cancelled") from err
            raise
        finally:
            with self._lock:
                self._socket = None
        if self.aborted:
            raise ConnectionAbortedError("the download was cancelled")


class ThreadedBodies:
    """Keep-alive connections per origin, shared by the worker threads of one client.

    ``connect_timeout`` bounds connecting; ``read_timeout`` is the longest wait for
    the next bytes (a stalled registry raises :class:`TimeoutError`).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> None:
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close every idle connection; later downloads open new ones."""
        with self._lock:
            idle, self._idle = self._idle, {}
            self._closed = True
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def fetch(
        self,
        request: BodyRequest,
        consume: Callable[[memoryview], None],
        transfer: Transfer,
    ) -> int:
        """Run ``request`` in this (worker) thread; the number of bytes consumed.

        Raises :class:`Declined`, :class:`BodyTooLong`, :class:`TimeoutError` (no byte
        for ``read_timeout``), or :class:`OSError` / :class:`http.client.HTTPException`
        when the connection fails (what was consumed before stays consumed).
        """
        headers = dict(request.headers)
        if request.offset:
            headers["Range"] = f"bytes={request.offset}-"
        response, conn, origin, _ = self._open(request.url, headers, transfer, (200, 206))
        try:
            skip = request.offset if response.status == 200 else 0
            with transfer.watching(conn):
                done = _read_body(response, skip, request.limit, transfer.guarded(consume))
        except BaseException:
            conn.close()
            raise
        self._release(origin, conn, response)
        return done

    def get(self, url: str, headers: dict[str, str], limit: int, transfer: Transfer) -> Answer:
        """A GET answered 200, its body (at most ``limit`` bytes) read whole; raises as
        :meth:`fetch` does."""
        response, conn, origin, final = self._open(url, dict(headers), transfer, (200,))
        parts: list[bytes] = []
        try:
            with transfer.watching(conn):
                _read_body(response, 0, limit, lambda view: parts.append(bytes(view)))
        except BaseException:
            conn.close()
            raise
        self._release(origin, conn, response)
        fields = {k.lower(): v for k, v in response.getheaders()}
        return Answer(headers=fields, body=b"".join(parts), url=final)

    def tls_answers(self, host: str, transfer: Transfer) -> bool:
        """Whether ``host`` (``name[:port]``) completes a TLS handshake; the connection
        is kept for the next request."""
        origin = _origin(f"https://{host}/")
        try:
            conn, _ = self._connection(origin)
        except TimeoutError:
            raise
        except OSError:  # refused, reset, or not TLS (a plain HTTP server answers garbage)
            return False
        with self._lock:
            self._idle.setdefault(origin, []).append(conn)
        return True

    def _open(
        self,
        url: str,
        headers: dict[str, str],
        transfer: Transfer,
        wanted: tuple[int, ...],
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, _Origin, str]:
        """Send a GET, following redirects, until an answer in ``wanted``."""
        for _ in range(_MAX_REDIRECTS + 1):
            origin = _origin(url)
            response, conn = self._send(origin, _target(url), headers, transfer)
            status = response.status
            if status in wanted:
                return response, conn, origin, url
            location = response.getheader("location")
            conn.close()  # the answer's body is not wanted: do not read it
            if status not in _REDIRECTS or not location:
                raise Declined(status, url, response.getheader("retry-after"))
            target = urljoin(url, location)
            if urlsplit(target).scheme not in ("http", "https"):
                raise Declined(status, url)
            if _origin(target) != origin:
                headers.pop("Authorization", None)  # credentials stay with their origin
            url = target
        raise Declined(399, url)  # httpx reports the redirect loop

    def _send(
        self,
        origin: _Origin,
        target: str,
        headers: dict[str, str],
        transfer: Transfer,
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """Send on an idle connection (a fresh one if the server had dropped it)."""
        while True:
            conn, reused = self._connection(origin)
            try:
                with transfer.watching(conn):
                    if conn.sock is not None:
                        conn.sock.settimeout(self._read_timeout)
                    conn.request("GET", target, headers=headers)
                    return conn.getresponse(), conn
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reused or transfer.aborted:
                    raise
                # a kept-alive connection the server closed meanwhile: try a new one
            except BaseException:
                conn.close()
                raise

    def _connection(self, origin: _Origin) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                return idle.pop(), True
        scheme, host, port = origin
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=self._connect_timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        conn.connect()
        return conn, False

    def _release(
        self, origin: _Origin, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> None:
        if response.will_close or not response.isclosed() or self._closed:
            conn.close()
            return
        if conn.sock is not None:
            conn.sock.settimeout(self._connect_timeout)
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < _MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
                return
        conn.close()


def _read_body(
    response: http.client.HTTPResponse,
    skip: int,
    limit: int,
    consume: Callable[[memoryview], None],
) -> int:
    """Consume the body after its first ``skip`` bytes, at most ``limit`` bytes of it."""
    length = response.length  # None when chunked or until close
    if length is not None and length - skip > limit:
        raise BodyTooLong(length - skip)
    # a small body (a manifest) gets a small buffer; one byte more than can be taken is
    # always asked for, to see a body that is too long
    size = min(BUFFER_BYTES, skip + limit + 1, length + 1 if length is not None else BUFFER_BYTES)
    view = memoryview(bytearray(size))
    room, done = limit, 0
    while True:
        n = response.readinto(view[: min(size, skip + room + 1)])
        if not n:
            if response.length:  # the server closed before Content-Length bytes
                raise http.client.IncompleteRead(b"", response.length)
            return done
        chunk = view[:n]
        if skip:
            cut = min(skip, n)
            chunk, skip = chunk[cut:], skip - cut
        if len(chunk) > room:
            raise BodyTooLong()
        if chunk:
            consume(chunk)
            room -= len(chunk)
            done += len(chunk)


def _origin(url: str) -> _Origin:
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, parts.hostname or "", port


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
