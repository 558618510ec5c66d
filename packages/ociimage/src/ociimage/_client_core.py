"""What the mixins of :class:`~ociimage.client.RegistryClient` (pushes, discovery) and
:mod:`ociimage._blob_httpx` use of it: a structural type, so that they live in modules
of their own and stay typed."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx

    from ociimage.client import FetchedManifest
    from ociimage.errors import ProgressTimeoutError
    from ociimage.limits import ResponseLimits

__all__ = ["ClientCore"]


class ClientCore(Protocol):
    host: str
    limits: ResponseLimits

    def _stream(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        ok: Sequence[int] = (200,),
    ) -> AbstractAsyncContextManager[httpx.Response]: ...

    async def _read_decoded(self, response: httpx.Response, limit: int, what: str) -> bytes: ...

    def _stalled(self, err: BaseException) -> ProgressTimeoutError: ...

    async def get_manifest(
        self, repository: str, reference: str, *, accept: Sequence[str] = ...
    ) -> FetchedManifest: ...

    async def blob_exists(self, repository: str, digest: str, *, push: bool = False) -> bool: ...
