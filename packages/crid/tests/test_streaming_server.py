"""The streaming server itself: tokens, HTTP answers, protocol negotiation, TLS, idle timeout."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crid.config import Config, load_config
from crid.errors import ConfigError, StreamTokenError
from crid.server import _stream_options
from crid.streaming import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    ServerOptions,
    StreamingServer,
    TokenCache,
)

from ._streaming_client import HTTPError, SpdyClient, WebSocketClient
from .conftest import make_config

EXEC = ExecRequest(container_id="c", command=("true",))


def test_tokens_are_single_use_bound_to_their_kind_and_expire() -> None:
    now = [100.0]
    cache = TokenCache(ttl=60, clock=lambda: now[0])
    token = cache.issue(EXEC)
    assert len(token) >= 43 and token != cache.issue(EXEC)
    assert cache.consume(token, ExecRequest) == EXEC
    with pytest.raises(StreamTokenError, match="already used"):
        cache.consume(token, ExecRequest)
    other = cache.issue(EXEC)
    with pytest.raises(StreamTokenError, match="issued for ExecRequest"):
        cache.consume(other, AttachRequest)
    with pytest.raises(StreamTokenError):  # a wrong kind still uses the token up
        cache.consume(other, ExecRequest)
    late = cache.issue(EXEC)
    now[0] += 60
    with pytest.raises(StreamTokenError, match="expired"):
        cache.consume(late, ExecRequest)


def test_the_cache_is_bounded() -> None:
    cache = TokenCache(capacity=3)
    first = cache.issue(EXEC)
    for _ in range(3):
        cache.issue(EXEC)
    with pytest.raises(StreamTokenError):
        cache.consume(first, ExecRequest)


def test_stream_options_come_from_the_config(tmp_path: Path) -> None:
    config = make_config(tmp_path)[1]
    options = _stream_options(config)
    assert (options.address, options.token_ttl, options.idle_timeout) == ("127.0.0.1", 60, 14400)
    assert isinstance(config, Config)
    # A bad duration never reaches the server: loading the configuration refuses it.
    bad = tmp_path / "bad.toml"
    bad.write_text('[crid.api]\nstream_idle_timeout = "soon"\n')
    with pytest.raises(ConfigError, match="stream_idle_timeout"):
        load_config(bad)


@pytest.fixture
async def server() -> AsyncIterator[StreamingServer]:
    started = StreamingServer(None, ServerOptions(idle_timeout=0.5))  # type: ignore[arg-type]
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


HOST_FORWARD = PortForwardRequest(sandbox_id="host", netns="/proc/self/ns/net", ports=(1,))


async def raw_request(server: StreamingServer, text: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(text.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_http_answers(server: StreamingServer) -> None:
    assert (await raw_request(server, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(
        b"HTTP/1.1 404 "
    )
    assert (await raw_request(server, "NOT HTTP AT ALL\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    huge = "GET /exec/x HTTP/1.1\r\nHost: x\r\nX-Pad: " + "a" * 70000 + "\r\n\r\n"
    assert (await raw_request(server, huge)).startswith(b"HTTP/1.1 431 ")
    token_url = server.url_for(HOST_FORWARD)
    path = token_url.split(str(server.port), 1)[1]
    plain = await raw_request(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    assert plain.startswith(b"HTTP/1.1 400 ") and b"Upgrade" in plain
    with pytest.raises(HTTPError) as refused:
        await SpdyClient.connect(server.url_for(HOST_FORWARD), ["v4.channel.k8s.io"])
    assert refused.value.status == 403
    with pytest.raises(HTTPError) as wrong_kind:  # an exec token does not open port-forwarding
        await SpdyClient.connect(
            server.url_for(EXEC).replace("/exec/", "/portforward/"), ["portforward.k8s.io"]
        )
    assert wrong_kind.value.status == 404
    with pytest.raises(HTTPError):
        await WebSocketClient.connect(server.url_for(EXEC), ["not.a.k8s.protocol"])


async def test_the_first_supported_offer_of_the_client_wins(server: StreamingServer) -> None:
    url = server.url_for(EXEC)
    client = await SpdyClient.connect(
        url, ["v9.channel.k8s.io", "v3.channel.k8s.io", "v4.channel.k8s.io"]
    )
    assert client.protocol == "v3.channel.k8s.io"  # the client's order of preference
    await client.close()


async def test_idle_connections_are_closed(server: StreamingServer) -> None:
    client = await SpdyClient.connect(server.url_for(HOST_FORWARD), ["portforward.k8s.io"])
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(client._task, 5)
    assert asyncio.get_running_loop().time() - started >= 0.4
    await client.close()


@pytest.mark.binaries("openssl")
async def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = StreamingServer(None, ServerOptions(tls_cert=str(cert), tls_key=str(key)))  # type: ignore[arg-type]
    await server.start()
    try:
        url = server.url_for(HOST_FORWARD)
        assert url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))
        client = await SpdyClient.connect(url, ["portforward.k8s.io"], ca=trusted)
        assert client.protocol == "portforward.k8s.io"
        await client.close()
        with pytest.raises(ssl.SSLError):
            await SpdyClient.connect(
                server.url_for(HOST_FORWARD),
                ["portforward.k8s.io"],
                ca=ssl.create_default_context(),
            )
    finally:
        await server.stop()


async def test_connections_are_bounded() -> None:
    """Silent peers (slowloris) take at most max_handshakes places; the rest get 503 at
    once, and established sessions count against max_connections."""
    limited = StreamingServer(
        None,  # type: ignore[arg-type]
        ServerOptions(max_connections=6, max_handshakes=3, request_timeout=30.0),
    )
    await limited.start()
    silent: list[asyncio.StreamWriter] = []
    try:
        for _ in range(3):
            _, writer = await asyncio.open_connection("127.0.0.1", limited.port)
            silent.append(writer)
        await asyncio.sleep(0.1)
        assert (await raw_request(limited, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(
            b"HTTP/1.1 503 "
        )
        # A peer that finishes its request frees its handshake place.
        silent.pop().close()
        await asyncio.sleep(0.1)
        sessions = [
            await SpdyClient.connect(limited.url_for(HOST_FORWARD), ["portforward.k8s.io"])
            for _ in range(3)
        ]
        # 2 silent + 3 sessions; one more handshake fits, then the total is reached.
        _, writer = await asyncio.open_connection("127.0.0.1", limited.port)
        silent.append(writer)
        await asyncio.sleep(0.1)
        assert (await raw_request(limited, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(
            b"HTTP/1.1 503 "
        )
        # Hundreds of refused connections cost nothing lasting.
        answers = await asyncio.gather(
            *(raw_request(limited, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(200))
        )
        assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in answers)
        assert len(limited._connections) == 6
        for session in sessions:
            await session.close()
        for writer in silent:
            writer.close()
        await asyncio.sleep(0.2)
        assert not limited._connections and limited._handshakes == 0
        assert (await raw_request(limited, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")).startswith(
            b"HTTP/1.1 404 "
        )
    finally:
        await limited.stop()
