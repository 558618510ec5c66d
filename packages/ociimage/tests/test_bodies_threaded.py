"""The threaded layer-body reader against a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ociimage._bodies_threaded import (
    BodyRequest,
    BodyTooLong,
    Declined,
    ThreadedBodies,
    Transfer,
)
from ociimage.layout import OCILayoutSink
from ociimage.pull import Puller
from ociimage.registries import RegistriesConfig
from ociimage.testing import DOCKER_REGISTRY, LocalRegistry, TestImages

BODY = os.urandom(3 << 20)  # several buffers' worth

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 whose answer per path is a function."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections = 0
        server = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_GET(self) -> None:
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                server.routes[self.path](self)

            def log_message(self, *args: object) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _bodies(read_timeout: float = 10.0) -> ThreadedBodies:
    return ThreadedBodies(
        ssl_context=ssl.create_default_context(), connect_timeout=5.0, read_timeout=read_timeout
    )


def _fixed(data: bytes, status: int = 200) -> Handler:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return answer


def _chunked(data: bytes) -> Handler:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for i in range(0, len(data), 100_000):
            part = data[i : i + 100_000]
            h.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    return answer


def _collect() -> tuple[list[bytes], Callable[[memoryview], None]]:
    parts: list[bytes] = []
    return parts, lambda view: parts.append(bytes(view))


def _get(bodies: ThreadedBodies, url: str, **kw: object) -> tuple[int, bytes]:
    parts, consume = _collect()
    request = BodyRequest(url=url, headers=dict(kw.pop("headers", {})), limit=len(BODY), **kw)  # type: ignore[arg-type]
    done = bodies.fetch(request, consume, Transfer())
    return done, b"".join(parts)


def test_content_length_and_chunked_bodies_arrive_whole(server: _Server) -> None:
    server.routes = {"/a": _fixed(BODY), "/b": _chunked(BODY)}
    bodies = _bodies()
    assert _get(bodies, server.url + "/a") == (len(BODY), BODY)
    assert _get(bodies, server.url + "/b") == (len(BODY), BODY)
    bodies.close()


def test_a_body_longer_than_the_limit_is_refused(server: _Server) -> None:
    server.routes = {"/long": _fixed(BODY + b"x"), "/long-chunked": _chunked(BODY + b"x")}
    bodies = _bodies()
    for path in ("/long", "/long-chunked"):
        parts, consume = _collect()
        with pytest.raises(BodyTooLong):
            bodies.fetch(
                BodyRequest(url=server.url + path, headers={}, limit=len(BODY)), consume, Transfer()
            )
        assert sum(len(p) for p in parts) <= len(BODY)


def test_a_range_the_server_ignores_is_skipped_locally(server: _Server) -> None:
    server.routes = {"/blob": _fixed(BODY)}
    parts, consume = _collect()
    request = BodyRequest(url=server.url + "/blob", headers={}, offset=1000, limit=len(BODY) - 1000)
    assert _bodies().fetch(request, consume, Transfer()) == len(BODY) - 1000
    assert b"".join(parts) == BODY[1000:]
    assert server.requests[0][1]["range"] == "bytes=1000-"


def test_other_answers_are_declined_to_the_caller(server: _Server) -> None:
    server.routes = {"/401": _fixed(b"no", status=401), "/500": _fixed(b"bad", status=500)}
    bodies = _bodies()
    for path, status in (("/401", 401), ("/500", 500)):
        with pytest.raises(Declined) as caught:
            _get(bodies, server.url + path)
        assert caught.value.status == status


def test_redirects_keep_authorization_only_on_their_origin(server: _Server) -> None:
    other = _Server()  # another port: another origin
    try:

        def redirect(to: str) -> Handler:
            def answer(h: http.server.BaseHTTPRequestHandler) -> None:
                h.send_response(307)
                h.send_header("Location", to)
                h.send_header("Content-Length", "0")
                h.end_headers()

            return answer

        server.routes = {"/start": redirect("/same"), "/same": redirect(other.url + "/cdn")}
        other.routes = {"/cdn": _fixed(BODY)}
        done, data = _get(_bodies(), server.url + "/start", headers={"Authorization": "Bearer t"})
        assert (done, data) == (len(BODY), BODY)
        assert [h.get("authorization") for _, h in server.requests] == ["Bearer t", "Bearer t"]
        assert other.requests[0][1].get("authorization") is None
    finally:
        other.close()


def test_a_redirect_loop_is_declined(server: _Server) -> None:
    def loop(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", "/loop")
        h.send_header("Content-Length", "0")
        h.end_headers()

    server.routes = {"/loop": loop}
    with pytest.raises(Declined):
        _get(_bodies(), server.url + "/loop")
    assert len(server.requests) == 11


def test_connections_are_kept_alive_and_stale_ones_replaced(server: _Server) -> None:
    server.routes = {"/blob": _fixed(BODY)}
    bodies = _bodies()
    for _ in range(3):
        assert _get(bodies, server.url + "/blob")[1] == BODY
    assert server.connections == 1
    # the server drops its idle connections: the next download opens a new one
    server.close()
    fresh = _Server()
    try:
        fresh.routes = {"/blob": _fixed(BODY)}
        port = fresh.url.rsplit(":", 1)[1]
        assert _get(bodies, f"http://127.0.0.1:{port}/blob")[1] == BODY
    finally:
        fresh.close()


def test_a_stale_kept_alive_connection_is_retried_once(server: _Server) -> None:
    """The server closes a connection after answering, without saying so: the next
    request finds it closed and goes on a new connection."""
    answer = _fixed(BODY)

    def answer_then_close(h: http.server.BaseHTTPRequestHandler) -> None:
        answer(h)
        h.close_connection = True

    server.routes = {"/blob": answer_then_close}
    bodies = _bodies()
    for _ in range(3):
        assert _get(bodies, server.url + "/blob")[1] == BODY
    assert server.connections == 3
    assert len(server.requests) == 3


def test_abort_stops_a_stalled_body_at_once(server: _Server) -> None:
    release = threading.Event()

    def stall(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(BODY)))
        h.end_headers()
        h.wfile.write(BODY[:5000])
        h.wfile.flush()
        release.wait(30)

    server.routes = {"/stall": stall}
    transfer = Transfer()
    parts, consume = _collect()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            _bodies(read_timeout=60).fetch(
                BodyRequest(url=server.url + "/stall", headers={}, limit=len(BODY)),
                consume,
                transfer,
            )
        except BaseException as err:
            outcome.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while sum(len(p) for p in parts) < 5000 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    transfer.abort()
    worker.join(10)
    release.set()
    assert not worker.is_alive()
    assert time.monotonic() - started < 5
    assert outcome and isinstance(outcome[0], OSError)


def test_a_stalled_body_times_out(server: _Server) -> None:
    release = threading.Event()

    def stall(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "10")
        h.end_headers()
        h.wfile.write(b"12345")
        h.wfile.flush()
        release.wait(30)

    server.routes = {"/stall": stall}
    try:
        with pytest.raises(TimeoutError):
            _get(_bodies(read_timeout=0.3), server.url + "/stall")
    finally:
        release.set()


@pytest.mark.binaries(DOCKER_REGISTRY)
async def test_a_pull_reads_layers_in_body_threads(
    registry: LocalRegistry,
    test_images: TestImages,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The layers of an ordinary pull go through the threads, not through httpx."""
    image = test_images.layered
    conf = RegistriesConfig.parse(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    readers: set[str] = set()
    sink = OCILayoutSink(tmp_path / "oci")
    opened = sink.open_blob

    def open_blob(descriptor):  # type: ignore[no-untyped-def]
        writer = opened(descriptor)
        write = writer.write

        def recorded(data: bytes | memoryview) -> None:
            readers.add(threading.current_thread().name.split("_")[0])
            write(data)

        writer.write = recorded  # type: ignore[method-assign]
        return writer

    sink.open_blob = open_blob  # type: ignore[method-assign]
    with caplog.at_level(logging.DEBUG, logger="ociimage.client"):
        async with Puller(registries=conf) as puller:
            result = await puller.pull(f"{registry.host}/{image.repository}:latest", sink)
    assert result.manifest.digest == image.manifest_digest
    assert "ociimage-body" in readers
    assert "via_httpx" not in caplog.text
    for digest in image.layer_digests:
        data = sink.blob_path(digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest.split(":")[1]


async def test_cancelling_a_download_stuck_in_connect_returns_at_once() -> None:
    """A registry whose accept queue is full: the connection attempt hangs (up to the
    client's 15 s connect timeout), yet a cancelled download returns at once."""
    import asyncio
    import socket

    from ociimage.client import RegistryClient
    from ocispec.image import Descriptor

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(4):  # fill the accept queue: later SYNs are dropped
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    descriptor = Descriptor(
        media_type="application/octet-stream", digest="sha256:" + "0" * 64, size=10
    )

    class Untouched:
        offset = 0

        def write(self, data: bytes | memoryview) -> None:
            raise AssertionError("nothing may be written")

        def commit(self) -> None:
            raise AssertionError("not committed")

        def abort(self) -> None:
            pass

    client = RegistryClient(host, insecure=True, timeout=60.0)
    try:
        task = asyncio.ensure_future(client.fetch_blob("r", descriptor, Untouched()))
        await asyncio.sleep(0.5)
        assert not task.done(), "the connection attempt should hang"
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 2
    finally:
        await client.aclose()
        for s in (*fillers, listener):
            s.close()
