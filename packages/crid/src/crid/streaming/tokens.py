"""Single-use, unguessable, expiring tokens that bind a streaming URL to its request."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from crid.errors import StreamTokenError
from crid.streaming.requests import StreamRequest

__all__ = ["TokenCache"]


class TokenCache:
    """Issued tokens with their request; each token works once, before it expires."""

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        capacity: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, StreamRequest]] = OrderedDict()

    def issue(self, request: StreamRequest) -> str:
        """A fresh token (256 random bits) for ``request``."""
        self._expire()
        while len(self._entries) >= self.capacity:
            self._entries.popitem(last=False)
        token = secrets.token_urlsafe(32)
        self._entries[token] = (self._clock() + self.ttl, request)
        return token

    def consume(self, token: str, kind: type[StreamRequest]) -> StreamRequest:
        """The request ``token`` was issued for; the token is gone afterwards."""
        entry = self._entries.pop(token, None)
        if entry is None:
            raise StreamTokenError("unknown or already used streaming token")
        expires, request = entry
        if self._clock() >= expires:
            raise StreamTokenError("streaming token expired")
        if not isinstance(request, kind):
            raise StreamTokenError(f"token was issued for {type(request).__name__}")
        return request

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[token]
