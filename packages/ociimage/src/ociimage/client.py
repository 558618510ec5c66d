"""An async client for one registry host (OCI distribution API v2).

GETs go first through :mod:`ociimage._bodies_threaded` (stdlib ``http.client`` in
worker threads: layers never cross the event loop); any answer but the expected one
(a 401 challenge, a 5xx, a redirect loop, a broken connection) is sent again through
httpx.AsyncClient, which owns authentication, retries and error reports, and which
also sends every other request (HEAD, pushes). httpx is imported only when needed: a
pull from a registry that answers at once never loads it.

It authenticates (Basic or Bearer, see :mod:`ociimage._tokens`), retries 5xx/429 and
dropped connections with backoff (honouring ``Retry-After``), negotiates manifest media
types and verifies every manifest's digest, streams blobs into a sink's writer while
hashing them (resuming with ``Range`` after a dropped connection) and cancels any wait
that makes no progress for ``progress_timeout`` seconds. Redirects to another host are
followed without the Authorization header (httpx drops it across origins).

It asks for ``Accept-Encoding: identity`` (digests name the bytes as stored). Every body
that is not a layer blob is capped by :class:`~ociimage.limits.ResponseLimits` and read
only up to its cap; a manifest or small blob that arrives gzip- or deflate-encoded
anyway is decoded (under the same cap) when its bytes as received do not match. Layer
blobs are taken as received and cut off at their descriptor's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from ociimage import _prefetch
from ociimage._blob_httpx import Dropped, fetch_range_httpx
from ociimage._bodies import content_encoding, decode, read_capped, read_prefix, too_large
from ociimage._bodies_threaded import (
    Answer,
    BodyRequest,
    BodyTooLong,
    Declined,
    ThreadedBodies,
    Transfer,
)
from ociimage._client_discovery import DiscoveryMethods
from ociimage._client_push import PushMethods
from ociimage._content import error_code, sniff_media_type, verify_content
from ociimage._retry import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from ociimage._tokens import Authorizer
from ociimage._wire import MANIFEST_MEDIA_TYPES, USER_AGENT, plain_headers, scope
from ociimage.auth import Credentials
from ociimage.errors import (
    AuthenticationError,
    ContentNotFoundError,
    DigestMismatchError,
    ProgressTimeoutError,
    RegistryError,
    RegistryUnavailableError,
    ResponseTooLargeError,
    SizeMismatchError,
)
from ociimage.limits import DEFAULT_LIMITS, ResponseLimits
from ociimage.sink import BlobWriter
from ociimage.tls import TLSConfig
from ocispec.image import Descriptor, Digest, is_index

if TYPE_CHECKING:
    import httpx

__all__ = ["MANIFEST_MEDIA_TYPES", "FetchedManifest", "RegistryClient"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: httpcore reads a response at most 64 KiB at a time; asyncio receives up to 256 KiB
#: per recv, which the network stream then cuts into 64 KiB pieces (copying the rest
#: each time). One read per recv quarters the per-chunk work and copies nothing.
READ_BYTES = 1 << 20
#: Layer downloads read by worker threads at once, per client (see _bodies_threaded).
_BODY_THREADS = 8


_large_reads = False


def use_large_reads() -> None:
    """Let httpcore read up to :data:`READ_BYTES` per call, in this whole process.

    A process-wide setting of httpcore's, so the library never makes it on import: the
    ``ociimage`` CLI, which owns its process, does; a program embedding ociimage may.
    It takes effect when httpx is first needed (see :meth:`RegistryClient._httpx`).
    """
    global _large_reads
    _large_reads = True
    if "httpcore" in sys.modules:
        _apply_large_reads()


def _apply_large_reads() -> None:
    import httpcore

    if getattr(httpcore.AsyncHTTP11Connection, "READ_NUM_BYTES", READ_BYTES) < READ_BYTES:
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = READ_BYTES


class _WriterFailed(Exception):  # noqa: N818 - a signal inside the client
    """The writer, not the connection, failed (a full disk, say): its error, the
    ``__cause__``, is the pull's, at once; resuming would only fail again."""


class FetchedManifest:
    """A manifest or index exactly as the registry sent it, with its verified digest.

    A plain class: a dataclass costs an importer about a millisecond."""

    __slots__ = ("data", "digest", "media_type")

    def __init__(self, *, media_type: str, data: bytes, digest: str) -> None:
        self.media_type = media_type
        self.data = data
        self.digest = digest

    def __repr__(self) -> str:
        return (
            f"FetchedManifest(media_type={self.media_type!r}, digest={self.digest!r}, "
            f"size={len(self.data)})"
        )

    @property
    def descriptor(self) -> Descriptor:
        """A descriptor for these bytes."""
        return Descriptor(media_type=self.media_type, digest=self.digest, size=len(self.data))

    @property
    def is_index(self) -> bool:
        """Whether this is an image index / manifest list."""
        return is_index(self.media_type)


class RegistryClient(PushMethods, DiscoveryMethods):
    """Speaks the distribution API to ``host`` (``name[:port]``).

    ``insecure`` allows unverified TLS and, when TLS does not answer, plain HTTP.
    Use as an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        tls: TLSConfig | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        progress_timeout: float | None = 60.0,
        limits: ResponseLimits = DEFAULT_LIMITS,
    ) -> None:
        self.host = host
        self.limits = limits
        self.insecure = insecure
        self.retry = retry or RetryPolicy()
        self.progress_timeout = progress_timeout
        self._auth = Authorizer(
            host, credentials or Credentials(), max_token_bytes=limits.max_token_bytes
        )
        verify = (tls or TLSConfig()).context(host, insecure=insecure)
        connect_timeout = min(timeout, 15.0)
        read_timeout = progress_timeout if progress_timeout is not None else timeout
        # layer bodies: blocking reads in worker threads; everything else: httpx
        self._bodies = ThreadedBodies(
            ssl_context=verify, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self._body_threads: ThreadPoolExecutor | None = None
        self._verify = verify
        self._timeouts = (timeout, connect_timeout, read_timeout)
        self._http_client: httpx.AsyncClient | None = None
        self._scheme: str | None = None if insecure else "https"

    def _httpx(self) -> httpx.AsyncClient:
        """The httpx client, made (and httpx imported) at the first request it sends."""
        if self._http_client is None:
            import httpx

            from ociimage._transport import AsyncioTransport

            if _large_reads:
                _apply_large_reads()
            total, connect, read = self._timeouts
            pool = httpx.Limits(max_connections=32, max_keepalive_connections=16)
            self._http_client = httpx.AsyncClient(
                verify=self._verify,
                # asyncio streams underneath, not anyio's (see ociimage._transport)
                transport=AsyncioTransport(verify=self._verify, limits=pool),
                # no byte for progress_timeout seconds: httpx raises a TimeoutException
                timeout=httpx.Timeout(total, connect=connect, read=read),
                follow_redirects=True,
                limits=pool,
                # digests name the bytes as stored: no content coding on top, please
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            )
        return self._http_client

    async def aclose(self) -> None:
        """Close the connections."""
        if self._http_client is not None:
            await self._http_client.aclose()
            self._http_client = None
        self._bodies.close()
        if self._body_threads is not None:
            self._body_threads.shutdown(wait=False)
            self._body_threads = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing ------------------------------------------------------------------

    async def _url(self, path: str) -> str:
        if self._scheme is None:
            # insecure: prefer TLS without verification, fall back to plain HTTP
            try:
                scheme = await self._prefetched_scheme()
                if scheme is None:
                    tls = await self._in_thread(lambda t: self._bodies.tls_answers(self.host, t))
                    scheme = "https" if tls else "http"
            except TimeoutError as err:
                raise self._stalled(err) from err
            self._scheme = scheme
            log.debug("event=scheme host=%s scheme=%s", self.host, self._scheme)
        return f"{self._scheme}://{self.host}{path}"

    async def _prefetched_scheme(self) -> str | None:
        """The CLI's probe of this host, if it made one (see ociimage._prefetch)."""
        probe = _prefetch.claim_scheme(self.host, self.insecure)
        return None if probe is None else await asyncio.wrap_future(probe)

    async def _in_thread(self, work: Callable[[Transfer], _T]) -> _T:
        """``work`` in a body thread. Cancelling the caller aborts it: its socket is shut
        down, and once :meth:`Transfer.abort` returns it writes nothing more, so the
        caller may discard its blob at once (the thread ends on its own, at the latest
        when a connection attempt times out)."""
        loop = asyncio.get_running_loop()
        if self._body_threads is None:
            self._body_threads = ThreadPoolExecutor(_BODY_THREADS, "ociimage-body")
        transfer = Transfer()
        running = loop.run_in_executor(self._body_threads, work, transfer)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            # off the loop: it waits for a consume in progress (one buffer's hash and
            # write, which a slow disk may stretch)
            await asyncio.shield(asyncio.to_thread(transfer.abort))
            # what the thread ends with is of no interest now: retrieve it, unlogged
            running.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise

    async def _declined(self, err: Declined) -> None:
        """Before httpx sends a declined request again: wait as a 429/5xx asked."""
        log.debug("event=via_httpx host=%s reason=%s", self.host, err)
        if err.status in RETRYABLE_STATUS:
            await asyncio.sleep(self.retry.delay(1, retry_after_seconds(err.retry_after)))

    def _plain_headers(self, scopes: Sequence[str], headers: dict[str, str]) -> dict[str, str]:
        """What httpx would send: its defaults, the request's, a known authorization."""
        return plain_headers(headers, self._auth.header(scopes))

    async def _get(
        self, path: str, *, scopes: Sequence[str], headers: dict[str, str], limit: int, what: str
    ) -> Answer:
        """A GET answered 200 and its body as received, at most ``limit`` bytes.

        Sent in a body thread; anything but a 200 (or a broken connection) is sent
        again through httpx, whose answer decides (auth challenges, retries, errors).
        """
        url = await self._url(path)
        sent = self._plain_headers(scopes, headers)
        try:
            prefetched = _prefetch.claim_answer(self.host, path, sent, limit)
            if prefetched is not None:
                asked, answer = await asyncio.wrap_future(prefetched)
                if answer is not None and asked == url:
                    return answer
            return await self._in_thread(lambda t: self._bodies.get(url, sent, limit, t))
        except BodyTooLong as err:
            shown = f"{what} ({err.announced} bytes announced)" if err.announced else what
            raise too_large(url, limit, shown) from err
        except TimeoutError as err:
            raise self._stalled(err) from err
        except Declined as err:
            await self._declined(err)
        except (OSError, http.client.HTTPException) as err:
            log.debug("event=get_via_httpx host=%s reason=%s", self.host, err)
        async with self._stream("GET", path, scopes=scopes, headers=headers) as response:
            body = await self._read_all(response, limit, what)
            fields = {k.lower(): v for k, v in response.headers.items()}
            return Answer(headers=fields, body=body, url=str(response.url))

    def _stalled(self, err: BaseException) -> ProgressTimeoutError:
        limit = self.progress_timeout
        shown = f"{limit:g}s" if limit is not None else "the timeout"
        return ProgressTimeoutError(f"no progress from {self.host} for {shown}; giving up: {err}")

    @asynccontextmanager
    async def _stream(
        self,
        method: str,
        path: str,
        *,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        ok: Sequence[int] = (200,),
    ) -> AsyncIterator[httpx.Response]:
        """Send a request through httpx (authorizing and retrying), yield the streamed
        response."""
        import httpx

        http = self._httpx()
        url = await self._url(path) if path.startswith("/") else path
        attempt = 0
        authorized_once = False
        while True:
            attempt += 1
            hdrs = dict(headers or {})
            auth = self._auth.header(scopes)
            if auth:
                hdrs["Authorization"] = auth
            request = http.build_request(method, url, headers=hdrs, content=content)
            try:
                response = await http.send(request, stream=True)
            except httpx.TimeoutException as err:
                raise self._stalled(err) from err
            except httpx.TransportError as err:
                if attempt >= self.retry.attempts:
                    raise RegistryUnavailableError(
                        f"{method} {url}: {type(err).__name__}: {err}"
                    ) from err
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            except httpx.HTTPError as err:
                # a redirect loop, a redirect to a scheme we do not speak, a bad URL:
                # retrying cannot help, another mirror might
                raise RegistryUnavailableError(
                    f"{method} {url}: {type(err).__name__}: {err}"
                ) from err
            try:
                status = response.status_code
                if status == 401 and not authorized_once:
                    # the challenge is in the headers: the body is never read
                    await self._auth.authorize(http, response, scopes)
                    authorized_once = True
                    attempt -= 1
                    continue
                if status in RETRYABLE_STATUS and attempt < self.retry.attempts:
                    wait = self.retry.delay(
                        attempt, retry_after_seconds(response.headers.get("retry-after"))
                    )
                    log.info("event=retry host=%s status=%d wait=%.2f", self.host, status, wait)
                    await asyncio.sleep(wait)
                    continue
                if status not in ok:
                    raise self._failure(method, url, response, await self._error_body(response))
                yield response
                return
            finally:
                await response.aclose()

    async def _error_body(self, response: httpx.Response) -> bytes:
        """The start of an error body (``max_error_bytes``); a broken one reads as empty."""
        import httpx

        if response.request.method == "HEAD":
            return b""
        try:
            return await read_prefix(response, self.limits.max_error_bytes)
        except httpx.HTTPError:
            return b""

    def _failure(
        self, method: str, url: str, response: httpx.Response, body: bytes
    ) -> RegistryError:
        status = response.status_code
        code = error_code(body)
        what = f"{method} {url}: HTTP {status}" + (f" {code}" if code else "")
        if status in (401, 403):
            return AuthenticationError(f"{what}: access denied", status=status, code=code)
        if status == 404:
            return ContentNotFoundError(f"{what}: not found", status=status, code=code)
        if status in RETRYABLE_STATUS:
            return RegistryUnavailableError(
                f"{what}: still failing after {self.retry.attempts} attempts",
                status=status,
                code=code,
            )
        text = body[:300].decode("utf-8", "replace")
        return RegistryError(f"{what}: {text}", status=status, code=code)

    async def _read_all(self, response: httpx.Response, limit: int, what: str) -> bytes:
        """A capped body as received (see :func:`ociimage._bodies.read_capped`)."""
        import httpx

        try:
            return await read_capped(response, limit, what)
        except httpx.TimeoutException as err:
            raise self._stalled(err) from err
        except httpx.TransportError as err:
            raise RegistryUnavailableError(f"{response.url}: connection failed: {err}") from err
        except httpx.HTTPError as err:
            raise RegistryUnavailableError(f"{response.url}: {type(err).__name__}: {err}") from err

    async def _read_decoded(self, response: httpx.Response, limit: int, what: str) -> bytes:
        """A capped body with any Content-Encoding undone (JSON answers, not digests)."""
        raw = await self._read_all(response, limit, what)
        return decode(raw, content_encoding(response.headers), limit, response.url, what)

    # -- manifests -----------------------------------------------------------------

    async def get_manifest(
        self,
        repository: str,
        reference: str,
        *,
        accept: Sequence[str] = MANIFEST_MEDIA_TYPES,
    ) -> FetchedManifest:
        """Fetch a manifest or index by tag or digest; its bytes must match the digest.

        Docker schema 1 is refused with :class:`UnsupportedManifestError`.
        """
        limit = self.limits.max_manifest_bytes
        answer = await self._get(
            f"/v2/{repository}/manifests/{reference}",
            scopes=[scope(repository)],
            headers={"Accept": ", ".join(accept)},
            limit=limit,
            what="manifest",
        )
        raw, url = answer.body, answer.url
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        header_digest = answer.headers.get("docker-content-digest", "")
        encoding = content_encoding(answer.headers)
        by_digest = reference.count(":") == 1 and reference.split(":")[0] in ("sha256", "sha512")
        data = raw
        if encoding and not (by_digest and Digest(reference).verify(raw)):
            # compressed although we asked for identity: the digest names the JSON
            data = decode(raw, encoding, limit, url, "manifest")
        if by_digest:
            wanted = Digest(reference)
            if not wanted.verify(data):
                raise DigestMismatchError(
                    f"manifest {self.host}/{repository}@{reference}: received bytes hash to "
                    f"{Digest.from_bytes(data, wanted.algorithm)}"
                )
            digest = str(wanted)
        else:
            digest = str(Digest.from_bytes(data))
            if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
                raise DigestMismatchError(
                    f"manifest {self.host}/{repository}:{reference}: bytes hash to {digest} "
                    f"but the registry says {header_digest}"
                )
        media_type = sniff_media_type(media_type, data, f"{self.host}/{repository}:{reference}")
        return FetchedManifest(media_type=media_type, data=data, digest=digest)

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The descriptor of a manifest by tag or digest, or None when it does not exist."""
        headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        try:
            async with self._stream(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                scopes=[scope(repository)],
                headers=headers,
            ) as response:
                digest = response.headers.get("docker-content-digest", "")
                media_type = response.headers.get("content-type", "").split(";")[0].strip()
                length = response.headers.get("content-length", "0")
                size = int(length) if length.isdigit() else 0
        except ContentNotFoundError:
            return None
        return Descriptor(media_type=media_type, digest=digest, size=size)

    # -- blobs ---------------------------------------------------------------------

    async def get_blob(
        self, repository: str, descriptor: Descriptor, *, limit: int | None = None
    ) -> bytes:
        """A small blob (config, signature) in memory, verified; ``limit`` defaults to
        ``max_config_bytes``. A blob larger than its descriptor is cut off there."""
        limit = self.limits.max_config_bytes if limit is None else limit
        if descriptor.size > limit:
            raise ResponseTooLargeError(
                f"blob {descriptor.digest} in {self.host}/{repository}: its descriptor says "
                f"{descriptor.size} bytes, past the {limit}-byte limit"
            )
        what = f"blob {descriptor.digest}"
        answer = await self._get(
            f"/v2/{repository}/blobs/{descriptor.digest}",
            scopes=[scope(repository)],
            headers={},
            limit=limit,
            what=what,
        )
        raw, url = answer.body, answer.url
        encoding = content_encoding(answer.headers)
        if not encoding and len(raw) > descriptor.size:
            # as received, it may not be longer than its descriptor (unless encoded)
            raise SizeMismatchError(
                f"{what} from {self.host}: more than the {descriptor.size} bytes its "
                "descriptor says; cut off"
            )
        data = raw
        if encoding and not Digest(descriptor.digest).verify(raw):
            data = decode(raw, encoding, min(limit, descriptor.size), url, what)
        verify_content(data, descriptor, f"{self.host}/{repository}")
        return data

    async def blob_exists(self, repository: str, digest: str, *, push: bool = False) -> bool:
        """Whether the repository has the blob."""
        wanted = scope(repository, "pull,push" if push else "pull")
        try:
            async with self._stream("HEAD", f"/v2/{repository}/blobs/{digest}", scopes=[wanted]):
                return True
        except ContentNotFoundError:
            return False

    async def fetch_blob(
        self,
        repository: str,
        descriptor: Descriptor,
        writer: BlobWriter,
        *,
        on_progress: Callable[[int], None] | None = None,
        verify: bool = True,
    ) -> None:
        """Stream a blob into ``writer`` (in worker threads), verifying size and digest.

        Resumes with ``Range`` from ``writer.offset`` after a dropped connection. Does not
        commit: the caller commits (or aborts) the writer. ``verify=False`` skips hashing
        here, for writers that verify the digest themselves on commit (every
        :class:`~ociimage.sink.BlobWriter` must), which saves hashing each byte twice.
        """
        digest = Digest(descriptor.digest)
        path = f"/v2/{repository}/blobs/{descriptor.digest}"
        start = writer.offset  # a counter in memory: no thread needed
        hasher = digest.hasher() if (verify and start == 0) else None
        failures = 0
        while True:
            offset = writer.offset
            if offset >= descriptor.size:
                break
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                if not await self._fetch_range_threaded(
                    path, repository, descriptor, writer, hasher, on_progress
                ):
                    # not a plain 200/206: httpx asks again (auth, retries, errors)
                    await fetch_range_httpx(
                        self,
                        path,
                        repository,
                        descriptor,
                        writer,
                        hasher,
                        offset,
                        headers,
                        on_progress,
                    )
                break
            except Dropped as err:
                failures += 1
                if failures >= self.retry.attempts:
                    raise RegistryUnavailableError(
                        f"blob {descriptor.digest} from {self.host}: connection kept failing: {err}"
                    ) from err
                log.info(
                    "event=blob_resume host=%s digest=%s offset=%d error=%s",
                    self.host,
                    descriptor.digest,
                    offset,
                    err,
                )
                await asyncio.sleep(self.retry.delay(failures))
        final = writer.offset
        if final != descriptor.size:
            raise SizeMismatchError(
                f"blob {descriptor.digest} from {self.host}: got {final} bytes, "
                f"descriptor says {descriptor.size}"
            )
        if hasher is not None and hasher.hexdigest() != digest.encoded:
            raise DigestMismatchError(
                f"blob {descriptor.digest} from {self.host}/{repository}: received bytes hash "
                f"to {digest.algorithm}:{hasher.hexdigest()}"
            )

    async def _fetch_range_threaded(
        self,
        path: str,
        repository: str,
        descriptor: Descriptor,
        writer: BlobWriter,
        hasher: hashlib._Hash | None,
        on_progress: Callable[[int], None] | None,
    ) -> bool:
        """Download from ``writer.offset`` in a worker thread; False when the registry
        answered anything but the body (nothing was written then)."""
        offset = writer.offset
        sent = self._plain_headers([scope(repository)], {})
        request = BodyRequest(
            url=await self._url(path), headers=sent, offset=offset, limit=descriptor.size - offset
        )
        loop = asyncio.get_running_loop()

        def consume(chunk: memoryview) -> None:  # in the worker thread
            if hasher is not None:
                hasher.update(chunk)
            try:
                writer.write(chunk)
            except Exception as err:
                raise _WriterFailed() from err
            if on_progress is not None:
                loop.call_soon_threadsafe(on_progress, len(chunk))

        try:
            await self._in_thread(lambda t: self._bodies.fetch(request, consume, t))
        except _WriterFailed as err:
            assert err.__cause__ is not None
            raise err.__cause__ from None
        except Declined as err:
            await self._declined(err)
            return False
        except BodyTooLong as err:
            raise SizeMismatchError(
                f"blob {descriptor.digest} from {self.host}: more than the "
                f"{descriptor.size} bytes its descriptor says"
            ) from err
        except TimeoutError as err:
            raise self._stalled(err) from err
        except (OSError, http.client.HTTPException) as err:
            # resumed from writer.offset by fetch_blob, as a dropped httpx stream is
            raise Dropped(f"{type(err).__name__}: {err}") from err
        return True
