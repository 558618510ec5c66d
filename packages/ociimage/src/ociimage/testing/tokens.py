"""A Bearer token issuer for token-auth test registries (needs ``cryptography``).

:class:`TokenIssuer` is a small HTTP server on 127.0.0.1 implementing the registry
token protocol: ``GET /token?service=&scope=`` with Basic credentials, and the OAuth2
``POST /token`` (``grant_type=password`` or ``refresh_token``). It signs RS256 JWTs
with a key whose self-signed certificate the registry trusts (``x5c`` header), so
Debian's ``docker-registry`` accepts them. :meth:`TokenIssuer.registry_auth` is the
``auth`` section for :class:`~ociimage.testing.LocalRegistry`::

    with TokenIssuer(users={"alice": "pw"}) as issuer, \\
            LocalRegistry(auth=issuer.registry_auth()) as registry:
        ...
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["IssuedToken", "TokenIssuer"]

SERVICE = "crid-test-registry"
ISSUER = "crid-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, kw_only=True)
class IssuedToken:
    """A token request the issuer answered (or refused: ``token`` empty)."""

    method: str
    account: str
    scopes: tuple[str, ...]
    grant_type: str
    token: str


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, doc: Mapping[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        issuer = self.server.issuer
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        scopes = tuple(query.get("scope", []))
        account = issuer.check_basic(self.headers.get("Authorization", ""))
        if account is None:
            issuer.log(
                IssuedToken(method="GET", account="", scopes=scopes, grant_type="", token="")
            )
            self._reply(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            return
        token = issuer.issue(account, scopes)
        issuer.log(
            IssuedToken(method="GET", account=account, scopes=scopes, grant_type="", token=token)
        )
        self._reply(200, {"token": token, "access_token": token, "expires_in": issuer.expires_in})

    def do_POST(self) -> None:
        issuer = self.server.issuer
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        grant = form.get("grant_type", [""])[0]
        scopes = tuple(" ".join(form.get("scope", [])).split())
        account: str | None = None
        if grant == "refresh_token":
            account = issuer.refresh_tokens.get(form.get("refresh_token", [""])[0])
        elif grant == "password":
            user, password = form.get("username", [""])[0], form.get("password", [""])[0]
            account = user if issuer.users.get(user) == password and user else None
        if account is None:
            issuer.log(
                IssuedToken(method="POST", account="", scopes=scopes, grant_type=grant, token="")
            )
            self._reply(401, {"error": "invalid_grant"})
            return
        token = issuer.issue(account, scopes)
        issuer.log(
            IssuedToken(
                method="POST", account=account, scopes=scopes, grant_type=grant, token=token
            )
        )
        self._reply(200, {"access_token": token, "expires_in": issuer.expires_in})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    issuer: TokenIssuer


class TokenIssuer:
    """Issues registry tokens to ``users`` (name → password) and ``refresh_tokens``
    (token → name); ``anonymous`` lets requests without credentials get pull tokens."""

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        refresh_tokens: Mapping[str, str] | None = None,
        anonymous: bool = False,
        expires_in: int = 300,
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = dict(users or {})
        self.refresh_tokens = dict(refresh_tokens or {})
        self.anonymous = anonymous
        self.expires_in = expires_in
        self.issued: list[IssuedToken] = []
        self._lock = threading.Lock()
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crid test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        self._dir = Path(tempfile.mkdtemp(prefix="crid-token-issuer-"))
        self.cert_path = self._dir / "issuer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        if self._server is None:
            raise RuntimeError("token issuer not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_auth(self) -> dict[str, Any]:
        """The registry config's ``auth`` section trusting this issuer."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def check_basic(self, header: str) -> str | None:
        """The account a request authenticates as ("" for anonymous), None if refused."""
        if not header:
            return "" if self.anonymous else None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return user if user and self.users.get(user) == password else None

    def issue(self, account: str, scopes: tuple[str, ...]) -> str:
        """A signed token granting ``scopes`` (anonymous accounts: pull only)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if not account:
                wanted = [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": wanted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {
            "iss": ISSUER,
            "sub": account,
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(signature)

    def log(self, entry: IssuedToken) -> None:
        with self._lock:
            self.issued.append(entry)

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.issuer = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        for f in self._dir.iterdir():
            f.unlink()
        self._dir.rmdir()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
