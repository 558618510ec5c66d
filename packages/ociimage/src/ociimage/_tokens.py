"""Registry authorization: Basic, and the Bearer token flow with a per-scope token cache.

A registry answers 401 with ``WWW-Authenticate``. For ``Basic`` we send the credentials;
for ``Bearer`` we ask the realm for a token covering the scopes the request needs
(anonymously, with Basic credentials, or by OAuth2 POST with a refresh token) and cache
it per scope set until shortly before it expires. A token answer is read only up to
``max_token_bytes`` (a lying token service cannot make us hold more).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ociimage._bodies import content_encoding, decode, read_capped
from ociimage.auth import Credentials
from ociimage.errors import AuthenticationError, RegistryError, RegistryUnavailableError
from ociimage.limits import DEFAULT_LIMITS

if TYPE_CHECKING:
    import httpx

    from ociimage._challenge import Challenge

__all__ = ["Authorizer"]

log = logging.getLogger(__name__)

_DEFAULT_EXPIRY = 60.0
_EXPIRY_MARGIN = 5.0
_CLIENT_ID = "ociimage"


class _Token:
    __slots__ = ("expires_at", "value")

    def __init__(self, *, value: str, expires_at: float) -> None:
        self.value = value
        self.expires_at = expires_at


def _basic(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Authorizer:
    """The Authorization header to send to one registry host, learnt from its challenges."""

    def __init__(
        self,
        host: str,
        credentials: Credentials,
        *,
        max_token_bytes: int = DEFAULT_LIMITS.max_token_bytes,
    ) -> None:
        self.host = host
        self.credentials = credentials
        self.max_token_bytes = max_token_bytes
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._lock = asyncio.Lock()

    def header(self, scopes: Sequence[str]) -> str | None:
        """A header good for ``scopes`` without asking anyone, if one is known."""
        ch = self._challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return _basic(self.credentials)
        if self.credentials.registry_token:
            return f"Bearer {self.credentials.registry_token}"
        token = self._tokens.get(self._key(ch, scopes))
        if token is not None and token.expires_at > time.monotonic():
            return f"Bearer {token.value}"
        return None

    def _key(self, ch: Challenge, scopes: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
        return (ch.params.get("realm", ""), ch.params.get("service", ""), tuple(sorted(scopes)))

    async def authorize(
        self, http: httpx.AsyncClient, response: httpx.Response, scopes: Sequence[str]
    ) -> str:
        """Answer a 401 ``response``: the header to retry with. Raises AuthenticationError."""
        from ociimage._challenge import parse_challenges  # a 401 went through httpx

        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        if not usable:
            raise AuthenticationError(
                f"{self.host} answered 401 without a Basic or Bearer challenge", status=401
            )
        ch = next((c for c in usable if c.scheme == "bearer"), usable[0])
        self._challenge = ch
        if ch.scheme == "basic":
            if not (self.credentials.username or self.credentials.password):
                raise AuthenticationError(
                    f"{self.host} wants Basic credentials and none are configured", status=401
                )
            return _basic(self.credentials)
        if self.credentials.registry_token:
            return f"Bearer {self.credentials.registry_token}"
        wanted = list(scopes)
        extra = ch.params.get("scope", "")
        for scope in extra.split():
            if scope not in wanted:
                wanted.append(scope)
        async with self._lock:
            cached = self.header(scopes)
            if cached is not None:
                return cached
            token = await self._fetch_token(http, ch, wanted)
            self._tokens[self._key(ch, scopes)] = token
            return f"Bearer {token.value}"

    async def _fetch_token(
        self, http: httpx.AsyncClient, ch: Challenge, scopes: Sequence[str]
    ) -> _Token:
        realm = ch.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise AuthenticationError(f"{self.host} sent a Bearer challenge without a usable realm")
        service = ch.params.get("service", "")
        creds = self.credentials
        if creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": _CLIENT_ID,
                "service": service,
                "scope": " ".join(scopes),
            }
            status, body = await self._ask(http, "POST", realm, data=form)
            if status not in (404, 405):
                return self._parse_token(status, body, realm)
            log.debug("event=oauth2_unsupported realm=%s falling_back=get", realm)
        params: list[tuple[str, str | int | float | bool | None]] = (
            [("service", service)] if service else []
        )
        params += [("scope", s) for s in scopes]
        if creds.username or creds.password:
            params.append(("account", creds.username))
            headers = {"Authorization": _basic(creds)}
        else:
            headers = {}
        status, body = await self._ask(http, "GET", realm, params=params, headers=headers)
        return self._parse_token(status, body, realm)

    async def _ask(
        self, http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> tuple[int, bytes]:
        """(status, body) of a token request; only a 200's body is read, up to the cap."""
        import httpx  # loaded with the client that asks

        try:
            async with http.stream(method, url, **kwargs) as response:
                if response.status_code != 200:
                    return response.status_code, b""
                limit = self.max_token_bytes
                raw = await read_capped(response, limit, "token answer")
                body = decode(
                    raw, content_encoding(response.headers), limit, response.url, "token answer"
                )
                return 200, body
        except httpx.HTTPError as err:
            raise RegistryUnavailableError(
                f"token service {url} for {self.host}: {type(err).__name__}: {err}"
            ) from err

    def _parse_token(self, status: int, body: bytes, realm: str) -> _Token:
        if status in (401, 403):
            raise AuthenticationError(
                f"token service {realm} refused the credentials for {self.host} (HTTP {status})",
                status=status,
            )
        if status != 200:
            raise RegistryError(f"token service {realm} answered HTTP {status}", status=status)
        try:
            doc = json.loads(body)
        except ValueError as err:
            raise RegistryError(f"token service {realm} sent a body that is not JSON") from err
        value = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token service {realm} sent no token")
        expires_in = doc.get("expires_in", _DEFAULT_EXPIRY)
        if not isinstance(expires_in, int | float) or expires_in <= 0:
            expires_in = _DEFAULT_EXPIRY
        expires_in = max(float(expires_in), _DEFAULT_EXPIRY)
        return _Token(value=value, expires_at=time.monotonic() + expires_in - _EXPIRY_MARGIN)
