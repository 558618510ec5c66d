"""ociimage.tls: certs.d CAs and client certificates, against a real TLS server on loopback."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ociimage._transport import AsyncioTransport
from ociimage.errors import ConfigFileError
from ociimage.tls import TLSConfig

pytestmark = pytest.mark.binaries("openssl")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=crid test CA",
        cwd=d,
    )
    for name in ("server", "client"):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        (d / f"{name}.ext").write_text(
            "subjectAltName=IP:127.0.0.1\n" if name == "server" else "extendedKeyUsage=clientAuth\n"
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(pki: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.crt", pki / "server.key")
    ctx.load_verify_locations(pki / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED  # the client must show a certificate
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _get(host: str, ctx: ssl.SSLContext) -> int:
    with httpx.Client(verify=ctx, timeout=5) as client:
        return client.get(f"https://{host}/v2/").status_code


def test_certs_d_ca_and_client_certificate(pki: Path, tls_server: str, tmp_path: Path) -> None:
    certs_d = tmp_path / "certs.d"
    host_dir = certs_d / tls_server
    host_dir.mkdir(parents=True)
    (host_dir / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    # without certs.d: the server's CA is unknown
    with pytest.raises(httpx.ConnectError):
        _get(tls_server, TLSConfig([tmp_path / "empty"]).context(tls_server))
    # CA only: the server wants a client certificate
    with pytest.raises((httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError)):
        _get(tls_server, TLSConfig([certs_d]).context(tls_server))
    (host_dir / "client.cert").write_bytes((pki / "client.crt").read_bytes())
    (host_dir / "client.key").write_bytes((pki / "client.key").read_bytes())
    tls = TLSConfig([tmp_path / "empty", certs_d])
    assert tls.host_dir(tls_server) == host_dir
    assert _get(tls_server, tls.context(tls_server)) == 200
    assert tls.context(tls_server) is tls.context(tls_server)


def test_insecure_skips_verification_but_keeps_client_cert(
    pki: Path, tls_server: str, tmp_path: Path
) -> None:
    host_dir = tmp_path / tls_server
    host_dir.mkdir()
    (host_dir / "c.cert").write_bytes((pki / "client.crt").read_bytes())
    (host_dir / "c.key").write_bytes((pki / "client.key").read_bytes())
    assert _get(tls_server, TLSConfig([tmp_path]).context(tls_server, insecure=True)) == 200


def test_broken_certs_d_entries(tmp_path: Path, pki: Path) -> None:
    host_dir = tmp_path / "h.io"
    host_dir.mkdir()
    (host_dir / "lonely.cert").write_bytes((pki / "client.crt").read_bytes())
    with pytest.raises(ConfigFileError, match="without a key"):
        TLSConfig([tmp_path]).context("h.io")
    (host_dir / "lonely.cert").unlink()
    (host_dir / "bad.crt").write_text("not a certificate")
    with pytest.raises(ConfigFileError, match="CA certificate"):
        TLSConfig([tmp_path]).context("h.io")


async def _aget(host: str, ctx: ssl.SSLContext, *, timeout: float = 5) -> list[int]:
    """Two GETs on one pooled connection through ociimage's asyncio transport."""
    transport = AsyncioTransport(verify=ctx, limits=httpx.Limits())
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        return [(await client.get(f"https://{host}/v2/")).status_code for _ in range(2)]


async def test_the_asyncio_transport_speaks_tls_with_client_certificates(
    pki: Path, tls_server: str, tmp_path: Path
) -> None:
    host_dir = tmp_path / tls_server
    host_dir.mkdir()
    (host_dir / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (host_dir / "c.cert").write_bytes((pki / "client.crt").read_bytes())
    (host_dir / "c.key").write_bytes((pki / "client.key").read_bytes())
    assert await _aget(tls_server, TLSConfig([tmp_path]).context(tls_server)) == [200, 200]
    with pytest.raises(httpx.ConnectError):  # the server's CA is unknown
        await _aget(tls_server, TLSConfig([tmp_path / "empty"]).context(tls_server))


async def test_the_asyncio_transport_times_out_a_silent_server() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never answers
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        transport = AsyncioTransport(verify=ssl.create_default_context(), limits=httpx.Limits())
        async with httpx.AsyncClient(transport=transport, timeout=0.3) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://{host}/v2/")
