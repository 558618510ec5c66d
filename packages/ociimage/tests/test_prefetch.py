"""The CLI's prefetched first manifest GET: taken by the client's identical request only.

A plain HTTP server on loopback records every request; the client is an insecure one,
as for a local registry, so the prefetch's TLS probe is exercised too.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from ociimage import _prefetch
from ociimage._wire import MANIFEST_ACCEPT, plain_headers
from ociimage.client import RegistryClient
from ociimage.errors import ContentNotFoundError
from ociimage.limits import DEFAULT_LIMITS
from ociimage.registries import RegistriesConfig

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "1" * 64,
            "size": 2,
        },
        "layers": [],
    }
).encode()
OTHER = MANIFEST.replace(b'"layers": []', b'"layers": [], "annotations": {"a": "b"}')
PATH = "/v2/app/x/manifests/1"


class _Registry:
    """Answers each path with its queue of statuses (200: ``bodies[path]``), the last
    status again once the queue is down to one; records every GET."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[int]] = {}
        self.bodies: dict[str, bytes] = {}
        self.gets: list[str] = []
        registry = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                registry.gets.append(self.path)
                queue = registry.statuses.get(self.path, [404])
                status = queue.pop(0) if len(queue) > 1 else queue[0]
                body = registry.bodies.get(self.path, b"") if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._http.server_address[1]}"

    def serve(self, path: str, body: bytes, statuses: tuple[int, ...] = (200,)) -> None:
        self.bodies[path] = body
        self.statuses[path] = list(statuses)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def registry() -> Iterator[_Registry]:
    r = _Registry()
    yield r
    r.close()
    _prefetch._probe = _prefetch._answer = None  # nothing pending for the next test


def _prefetch_for(registry: _Registry, path: str = PATH) -> _prefetch.Prefetch:
    prefetch = _prefetch.Prefetch(
        host=registry.host,
        insecure=True,
        path=path,
        headers=plain_headers({"Accept": MANIFEST_ACCEPT}),
        limit=DEFAULT_LIMITS.max_manifest_bytes,
        connect_timeout=5.0,
        read_timeout=5.0,
    )
    _prefetch.start(prefetch)
    return prefetch


async def test_the_identical_first_request_takes_the_prefetched_answer(
    registry: _Registry,
) -> None:
    registry.serve(PATH, MANIFEST)
    prefetch = _prefetch_for(registry)
    async with RegistryClient(registry.host, insecure=True) as client:
        got = await client.get_manifest("app/x", "1")
        assert got.data == MANIFEST
        assert prefetch.probe.result() == "http"  # the probe was the prefetch's too
        assert registry.gets == [PATH]  # asked once, by the prefetch
        # taken once: the same request later goes to the registry
        assert (await client.get_manifest("app/x", "1")).data == MANIFEST
    assert registry.gets == [PATH, PATH]


async def test_a_different_first_request_is_sent_and_the_prefetch_dropped(
    registry: _Registry,
) -> None:
    registry.serve(PATH, MANIFEST)
    registry.serve("/v2/app/x/manifests/2", OTHER)
    prefetch = _prefetch_for(registry)
    async with RegistryClient(registry.host, insecure=True) as client:
        assert (await client.get_manifest("app/x", "2")).data == OTHER
        prefetch.answer.result(timeout=5)
        # the prefetched answer for 1 is not kept for later either
        assert (await client.get_manifest("app/x", "1")).data == MANIFEST
    assert sorted(registry.gets) == sorted([PATH, "/v2/app/x/manifests/2", PATH])


async def test_other_headers_are_a_different_request(registry: _Registry) -> None:
    registry.serve(PATH, MANIFEST)
    _prefetch_for(registry)
    async with RegistryClient(registry.host, insecure=True) as client:
        got = await client.get_manifest(
            "app/x", "1", accept=["application/vnd.oci.image.index.v1+json"]
        )
        assert got.data == MANIFEST
    assert registry.gets == [PATH, PATH]


async def test_another_host_neither_takes_the_probe_nor_the_answer(registry: _Registry) -> None:
    other = _Registry()
    try:
        registry.serve(PATH, MANIFEST)
        other.serve(PATH, OTHER)
        _prefetch_for(registry)
        async with RegistryClient(other.host, insecure=True) as client:
            assert (await client.get_manifest("app/x", "1")).data == OTHER
        assert other.gets == [PATH]
    finally:
        other.close()


@pytest.mark.parametrize("status", [500, 429])
async def test_an_error_answer_falls_back_to_the_clients_own_request(
    registry: _Registry, status: int
) -> None:
    registry.serve(PATH, MANIFEST, statuses=(status, 200))
    prefetch = _prefetch_for(registry)
    async with RegistryClient(registry.host, insecure=True) as client:
        assert (await client.get_manifest("app/x", "1")).data == MANIFEST
    assert prefetch.answer.result()[1] is None  # the prefetch saw the error...
    assert registry.gets == [PATH, PATH]  # ...and the client asked itself


async def test_a_missing_image_is_reported_as_without_a_prefetch(registry: _Registry) -> None:
    _prefetch_for(registry)
    async with RegistryClient(registry.host, insecure=True) as client:
        with pytest.raises(ContentNotFoundError):
            await client.get_manifest("app/x", "1")
    assert registry.gets.count(PATH) >= 2  # the prefetch's, then the client's own


async def test_a_refused_connection_falls_back() -> None:
    registry = _Registry()
    host = registry.host
    registry.close()  # nothing listens there now
    prefetch = _prefetch.Prefetch(
        host=host,
        insecure=True,
        path=PATH,
        headers=plain_headers({"Accept": MANIFEST_ACCEPT}),
        limit=DEFAULT_LIMITS.max_manifest_bytes,
        connect_timeout=5.0,
        read_timeout=5.0,
    )
    prefetch.run()  # in this thread
    assert prefetch.probe.result() == "http"  # TLS refused: what the client concludes too
    assert prefetch.answer.result() == (f"http://{host}{PATH}", None)


def test_start_for_asks_the_first_source_as_the_puller_will(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[_prefetch.Prefetch] = []
    monkeypatch.setattr(_prefetch, "start", started.append)
    conf = RegistriesConfig.parse(
        '[[registry]]\nlocation = "quay.io/app"\n'
        '[[registry.mirror]]\nlocation = "mirror.local:5000/app"\ninsecure = true\n'
    )
    _prefetch.start_for(conf, "quay.io/app/x:1", 30.0)
    _prefetch.start_for(
        conf.with_insecure(["local:5000"]), "local:5000/app/y@sha256:" + "2" * 64, None
    )
    _prefetch.start_for(conf, "UPPER/case", 30.0)  # not a reference: no prefetch
    mirror, insecure = started
    assert (mirror.host, mirror.insecure, mirror.path) == (
        "mirror.local:5000",
        True,
        "/v2/app/x/manifests/1",
    )
    assert mirror.read_timeout == 30.0
    assert (insecure.host, insecure.insecure) == ("local:5000", True)
    assert insecure.path == "/v2/app/y/manifests/sha256:" + "2" * 64
    assert mirror.headers == plain_headers({"Accept": MANIFEST_ACCEPT})
