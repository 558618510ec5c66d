"""Pulling an image into a :class:`~ociimage.sink.PullSink`.

:class:`Puller` resolves a name (short names through registries.conf), tries the
mirrors then the primary location, negotiates the manifest, picks the platform from an
index, then downloads the config and layers concurrently (bounded; one fetch per digest
even when asked for twice at once) into the sink, and commits the image only once every
blob is committed. Cancelled or failed, it aborts what it was writing: no partial blob
and no image become visible. :func:`pull` and :func:`pull_sync` are one-shot helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ociimage._retry import RetryPolicy
from ociimage.auth import Credentials, CredentialStore
from ociimage.client import FetchedManifest, RegistryClient
from ociimage.errors import (
    ContentNotFoundError,
    ImageError,
    NoMatchingPlatformError,
    UnsupportedManifestError,
)
from ociimage.limits import DEFAULT_LIMITS, ResponseLimits
from ociimage.pull_result import ProgressCallback, ProgressEvent, ProgressKind, PullResult
from ociimage.reference import Reference
from ociimage.registries import PullSource, RegistriesConfig
from ociimage.resolved import LocatedImage, ResolvedImage
from ociimage.singleflight import SingleFlight
from ociimage.sink import PullSink
from ociimage.tls import TLSConfig
from ocispec.errors import SpecError
from ocispec.image import Descriptor, Index, Manifest, Platform, host_platform

if TYPE_CHECKING:
    # signature checking (cryptography, yaml) is imported only when a policy is evaluated
    from ociimage.policy import Policy
    from ociimage.registries_d import RegistriesD
    from ociimage.trust import PolicyDecision

__all__ = [
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
    "PullResult",
    "Puller",
    "pull",
    "pull_sync",
]

log = logging.getLogger(__name__)

_M = TypeVar("_M", Manifest, Index)
_I = TypeVar("_I", bound=LocatedImage)
_T = TypeVar("_T")

#: Errors after which the next mirror / location / candidate is tried: every way a
#: source can fail (refused, unreachable, redirect loop, TLS, timeout, 5xx, a body that
#: is too large, malformed or does not match its digest). A mirror is only a cache.
_TRY_NEXT = (ImageError,)


class _BlobSource:
    """A place to download an image's blobs from, and its client."""

    __slots__ = ("client", "source")

    def __init__(self, client: RegistryClient, source: PullSource) -> None:
        self.client = client
        self.source = source


class Puller:
    """Pulls images; share one across concurrent pulls so identical blobs are fetched once.

    ``registries`` (default: nothing configured) decides sources and insecure hosts;
    ``credentials`` finds auth per repository (default: the standard auth files);
    ``policy`` is enforced before layers move, with signatures found as ``registries_d``
    says (default: sigstore attachments in the registry, no lookaside).
    """

    def __init__(
        self,
        *,
        registries: RegistriesConfig | None = None,
        credentials: CredentialStore | None = None,
        tls: TLSConfig | None = None,
        retry: RetryPolicy | None = None,
        max_concurrent_downloads: int = 4,
        progress_timeout: float | None = 60.0,
        timeout: float = 60.0,
        policy: Policy | None = None,
        registries_d: RegistriesD | None = None,
        limits: ResponseLimits = DEFAULT_LIMITS,
    ) -> None:
        self.registries = registries or RegistriesConfig()
        self.limits = limits
        self.policy = policy
        self.registries_d = registries_d
        self._credentials = credentials
        self._tls = tls or TLSConfig()
        self._retry = retry or RetryPolicy()
        self._progress_timeout = progress_timeout
        self._timeout = timeout
        self._limit = asyncio.Semaphore(max_concurrent_downloads)
        self._clients: dict[tuple[str, bool, Credentials], RegistryClient] = {}
        # one download per digest however many pulls (into one store) want it at once
        self._downloads: SingleFlight[str, int] = SingleFlight()

    async def aclose(self) -> None:
        """Close every registry connection."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Puller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _store(self) -> CredentialStore:
        if self._credentials is None:
            self._credentials = CredentialStore()
        return self._credentials

    def client(
        self, host: str, *, insecure: bool = False, credentials: Credentials | None = None
    ) -> RegistryClient:
        """The (cached) client for ``host``; credentials default to the credential store."""
        if credentials is None or credentials.anonymous:
            credentials = self._store().lookup(host)
        key = (host, insecure, credentials)
        client = self._clients.get(key)
        if client is None:
            client = RegistryClient(
                host,
                credentials=credentials,
                insecure=insecure,
                tls=self._tls,
                retry=self._retry,
                timeout=self._timeout,
                progress_timeout=self._progress_timeout,
                limits=self.limits,
            )
            self._clients[key] = client
        return client

    def _client_for(self, source: PullSource, credentials: Credentials | None) -> RegistryClient:
        ref = source.reference
        if credentials is None or credentials.anonymous:
            # an empty CRI AuthConfig means "use the configured auth files", as in CRI-O
            credentials = self._store().lookup(ref.name)
        insecure = source.insecure or self.registries.is_insecure(ref.domain)
        return self.client(ref.domain, insecure=insecure, credentials=credentials)

    # -- resolving -----------------------------------------------------------------

    async def resolve(
        self,
        name: str,
        *,
        platform: Platform | str | None = None,
        credentials: Credentials | None = None,
    ) -> ResolvedImage:
        """Find ``name``'s manifest and config for ``platform`` (the host's by default).

        Candidates (short-name resolution) and sources (mirrors, then the location) are
        tried in order; the first that has the image wins.
        """

        async def at(client: RegistryClient, ref: Reference, source: PullSource) -> ResolvedImage:
            image = await self._locate_at(client, ref, source, platform)
            data = await client.get_blob(source.reference.path, image.image_manifest.config)
            return _resolved(image, data)

        return await self._first_source(name, credentials, at)

    async def locate(
        self,
        name: str,
        *,
        platform: Platform | str | None = None,
        credentials: Credentials | None = None,
    ) -> LocatedImage:
        """Find ``name``'s manifest for ``platform``, as :meth:`resolve` does, without
        fetching the config (a pull fetches it with the layers)."""

        async def at(client: RegistryClient, ref: Reference, source: PullSource) -> LocatedImage:
            return await self._locate_at(client, ref, source, platform)

        return await self._first_source(name, credentials, at)

    async def _first_source(
        self,
        name: str,
        credentials: Credentials | None,
        at: Callable[[RegistryClient, Reference, PullSource], Awaitable[_I]],
    ) -> _I:
        """``at`` for each candidate and source in order, until one does not fail."""
        resolution = self.registries.resolve(name)
        failures: list[tuple[str, ImageError]] = []
        for candidate in resolution.candidates:
            for source in self.registries.pull_sources(candidate):
                client = self._client_for(source, credentials)
                try:
                    return await at(client, candidate, source)
                except _TRY_NEXT as err:
                    log.info("event=source_failed source=%s error=%s", source.reference, err)
                    failures.append((str(source.reference), err))
        raise _combined(name, failures)

    async def _locate_at(
        self,
        client: RegistryClient,
        reference: Reference,
        source: PullSource,
        platform: Platform | str | None,
    ) -> LocatedImage:
        repo = source.reference.path
        top = await client.get_manifest(repo, source.reference.manifest_reference)
        manifest = top
        platforms: tuple[Platform, ...] = ()
        if top.is_index:
            index = _decode(Index, top, source.reference)
            platforms = tuple(d.platform for d in index.manifests if d.platform is not None)
            wanted = platform or host_platform()
            chosen = index.select(wanted)
            if not chosen:
                offered = ", ".join(str(p) for p in platforms) or "none"
                raise NoMatchingPlatformError(
                    f"{reference} has no image for platform {wanted} (it has: {offered})"
                )
            manifest = await client.get_manifest(repo, chosen[0].digest)
            if manifest.is_index:
                raise UnsupportedManifestError(f"{reference}: an index inside an index")
        return LocatedImage(
            reference=reference,
            source=source,
            top=top,
            manifest=manifest,
            image_manifest=_decode(Manifest, manifest, source.reference),
            platforms=platforms,
        )

    # -- pulling -------------------------------------------------------------------

    async def pull(
        self,
        name: str,
        sink: PullSink,
        *,
        platform: Platform | str | None = None,
        credentials: Credentials | None = None,
        progress: ProgressCallback | None = None,
    ) -> PullResult:
        """Pull ``name`` into ``sink`` and commit it there; see the module docs.

        With a policy, it is evaluated once the manifest is known, before any blob (the
        config included) is downloaded; a rejection raises
        :class:`~ociimage.errors.PolicyRejectedError` and nothing is written.
        """
        image = await self.locate(name, platform=platform, credentials=credentials)
        decision = await self.check_policy(image, credentials=credentials)
        return await self._pull_located(image, None, sink, credentials, progress, decision)

    async def check_policy(
        self, image: LocatedImage, *, credentials: Credentials | None = None
    ) -> PolicyDecision | None:
        """Evaluate the puller's policy for ``image`` (None when it has no policy)."""
        if self.policy is None:
            return None
        from ociimage.trust import evaluate_policy

        client = self._client_for(image.source, credentials)
        return await evaluate_policy(self.policy, image, client, self.registries_d)

    async def pull_resolved(
        self,
        image: ResolvedImage,
        sink: PullSink,
        *,
        credentials: Credentials | None = None,
        progress: ProgressCallback | None = None,
        decision: PolicyDecision | None = None,
    ) -> PullResult:
        """Download and commit an image found by :meth:`resolve` (e.g. after a policy check)."""
        return await self._pull_located(image, image, sink, credentials, progress, decision)

    async def _pull_located(
        self,
        image: LocatedImage,
        resolved: ResolvedImage | None,
        sink: PullSink,
        credentials: Credentials | None,
        progress: ProgressCallback | None,
        decision: PolicyDecision | None,
    ) -> PullResult:
        """Download the config (unless ``resolved`` has it) and the layers at once, then
        store the manifest (and index) and commit the image.

        The config is decoded and checked against the manifest while the layers
        download; no layer is committed to the sink before it passed (a layer waits
        for it, which costs nothing: it is a small blob).
        """
        sources = self._blob_sources(image, credentials)
        skipped: list[str] = []
        config = asyncio.ensure_future(self._image_config(sources, image, resolved, sink, skipped))
        layers: list[Descriptor] = []
        seen: set[str] = set()
        for layer in image.image_manifest.layers:
            if layer.digest not in seen:
                seen.add(layer.digest)
                layers.append(layer)
        results = await _gather_or_cancel(
            [
                config,
                *(self._ensure_blob(sources, layer, sink, progress, config) for layer in layers),
            ]
        )
        resolved = results[0]
        downloaded = sum(r for r in results[1:] if r > 0)
        skipped += [layer.digest for layer, r in zip(layers, results[1:], strict=True) if r < 0]
        await self._store_bytes(sink, image.manifest.descriptor, image.manifest.data, skipped)
        if image.index is not None:
            await self._store_bytes(sink, image.index, image.top.data, skipped)
        await asyncio.to_thread(
            lambda: sink.commit_image(
                manifest=image.manifest.descriptor, names=image.names, index=image.index
            )
        )
        log.info(
            "event=pulled reference=%s digest=%s bytes=%d",
            image.reference,
            image.digest,
            downloaded,
        )
        return PullResult(
            image=resolved,
            policy=decision,
            downloaded_bytes=downloaded,
            skipped_blobs=tuple(skipped),
        )

    async def _image_config(
        self,
        sources: Sequence[_BlobSource],
        image: LocatedImage,
        resolved: ResolvedImage | None,
        sink: PullSink,
        skipped: list[str],
    ) -> ResolvedImage:
        """The image with its config, fetched (from the first source that has it) and
        checked unless ``resolved`` has it already, and stored in ``sink``."""
        descriptor = image.image_manifest.config
        if resolved is None:
            failures: list[tuple[str, ImageError]] = []
            for source in sources:
                try:
                    data = await source.client.get_blob(source.source.reference.path, descriptor)
                    break
                except ImageError as err:
                    where = str(source.source.reference)
                    log.info("event=blob_source_failed source=%s error=%s", where, err)
                    failures.append((where, err))
            else:
                raise _combined(f"blob {descriptor.digest}", failures)
            resolved = _resolved(image, data)
        await self._store_bytes(sink, descriptor, resolved.config_data, skipped)
        return resolved

    def _blob_sources(
        self, image: LocatedImage, credentials: Credentials | None
    ) -> list[_BlobSource]:
        """Where layers may come from: the source the image was found at, then every
        other source of the (content-addressed) image, in registries.conf's order."""
        first = image.source
        try:
            others = self.registries.pull_sources(image.reference.with_digest(image.digest))
        except ImageError:
            others = []
        out = [_BlobSource(self._client_for(first, credentials), first)]
        seen = {(first.reference.domain, first.reference.path)}
        for source in others:
            key = (source.reference.domain, source.reference.path)
            if key not in seen:
                seen.add(key)
                out.append(_BlobSource(self._client_for(source, credentials), source))
        return out

    async def _store_bytes(
        self, sink: PullSink, descriptor: Descriptor, data: bytes, skipped: list[str]
    ) -> None:
        def write() -> bool:
            """Store ``data`` unless present (one thread hop for both)."""
            if sink.has_blob(descriptor.digest):
                return False
            writer = sink.open_blob(descriptor)
            try:
                writer.write(data)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
            return True

        # the config is stored while the layers download: a layer failing cancels this
        if not await _to_the_end(write):
            skipped.append(descriptor.digest)

    async def _ensure_blob(
        self,
        sources: Sequence[_BlobSource],
        descriptor: Descriptor,
        sink: PullSink,
        progress: ProgressCallback | None,
        vetted: asyncio.Future[Any],
    ) -> int:
        """Bytes this call downloaded (0 when it joined another's download), -1 when present.

        Downloads are shared by digest, whatever the sink: crid gives every pull its own
        sink object on one store. A caller that joined another's download checks its own
        sink afterwards and downloads itself only when the blob did not land there (the
        other pull wrote elsewhere, or failed).
        """
        digest = descriptor.digest
        joined = False
        while True:
            if await asyncio.to_thread(sink.has_blob, digest):
                if joined:
                    return 0  # a joiner downloaded nothing itself
                if progress is not None:
                    progress(ProgressEvent(kind=ProgressKind.EXISTS, descriptor=descriptor))
                return -1
            if joined:  # the shared download went to another store, or failed: our own turn
                return await self._download(sources, descriptor, sink, progress, vetted)
            joined = self._downloads.in_flight(digest)
            try:
                done, owner = await self._downloads.run(
                    digest, lambda: self._download(sources, descriptor, sink, progress, vetted)
                )
            except ImageError:
                if not joined:
                    raise
                continue
            if owner:
                return done

    async def _download(
        self,
        sources: Sequence[_BlobSource],
        descriptor: Descriptor,
        sink: PullSink,
        progress: ProgressCallback | None,
        vetted: asyncio.Future[Any],
    ) -> int:
        """Download from the first source that delivers the blob intact; a source that
        fails in any way (its partial bytes discarded) hands over to the next."""
        failures: list[tuple[str, ImageError]] = []
        for source in sources:
            try:
                return await self._download_from(source, descriptor, sink, progress, vetted)
            except ImageError as err:
                where = str(source.source.reference)
                log.info("event=blob_source_failed source=%s error=%s", where, err)
                failures.append((where, err))
        raise _combined(f"blob {descriptor.digest}", failures)

    async def _download_from(
        self,
        source: _BlobSource,
        descriptor: Descriptor,
        sink: PullSink,
        progress: ProgressCallback | None,
        vetted: asyncio.Future[Any],
    ) -> int:
        """Download one blob into ``sink``; it is committed once ``vetted`` (the image's
        config, checked) is done, and not at all if that fails."""
        client, repo = source.client, source.source.reference.path
        async with self._limit:
            done = 0

            def advance(n: int) -> None:  # on the loop, for each buffer a thread consumed
                nonlocal done
                done += n
                if progress is not None:
                    progress(
                        ProgressEvent(kind=ProgressKind.PROGRESS, descriptor=descriptor, done=done)
                    )

            # without a progress display the threads need not wake the loop per buffer
            on_progress = advance if progress is not None else None
            if progress is not None:
                progress(ProgressEvent(kind=ProgressKind.START, descriptor=descriptor))
            opening = asyncio.ensure_future(asyncio.to_thread(sink.open_blob, descriptor))
            try:
                writer = await asyncio.shield(opening)
            except asyncio.CancelledError:
                # the thread may already have created the writer: discard it
                opened = await asyncio.gather(opening, return_exceptions=True)
                if not isinstance(opened[0], BaseException):
                    await _to_the_end(opened[0].abort)
                raise
            try:
                # the sink verifies size and digest on commit (the protocol requires it)
                start = writer.offset  # a sink may resume a blob it kept a part of
                await client.fetch_blob(
                    repo, descriptor, writer, on_progress=on_progress, verify=False
                )
                done = writer.offset - start
                await asyncio.shield(vetted)  # raises as the config failed
                await _to_the_end(writer.commit)  # not aborted while it renames
            except BaseException:
                # a pull failing as a whole cancels this task, maybe while it aborts
                await _to_the_end(writer.abort)
                raise
            if progress is not None:
                progress(ProgressEvent(kind=ProgressKind.DONE, descriptor=descriptor, done=done))
            return done


async def _to_the_end(work: Callable[[], _T]) -> _T:
    """``work()`` in a thread, waited for even when the caller is cancelled meanwhile
    (the cancellation is raised once it is done): a thread cannot be stopped, and the
    pull's caller must not see its error while a blob is still being written, committed
    or removed behind it."""
    job = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():  # a second cancellation does not cut the wait short
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({job})
        if not job.cancelled():
            job.exception()  # retrieved: the cancellation is what the caller sees
        raise


async def _gather_or_cancel(coros: Sequence[Awaitable[Any]]) -> list[Any]:
    """Run the downloads; on the first failure cancel the rest and wait for their cleanup."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _resolved(image: LocatedImage, config_data: bytes) -> ResolvedImage:
    """``image`` with its config, which must decode and match the manifest's layers."""
    from ocispec.image.config import ImageConfig

    reference = image.reference
    try:
        config = ImageConfig.from_json(config_data)
    except SpecError as err:
        raise UnsupportedManifestError(f"{reference}: image config: {err}") from err
    layers = len(image.image_manifest.layers)
    if config.rootfs.diff_ids and len(config.rootfs.diff_ids) != layers:
        raise UnsupportedManifestError(
            f"{reference}: the manifest has {layers} layers, the "
            f"config {len(config.rootfs.diff_ids)} diff_ids"
        )
    return ResolvedImage(
        reference=reference,
        source=image.source,
        top=image.top,
        manifest=image.manifest,
        image_manifest=image.image_manifest,
        config_data=config_data,
        config=config,
        platforms=image.platforms,
    )


def _decode(cls: type[_M], fetched: FetchedManifest, ref: Reference) -> _M:
    try:
        return cls.from_json(fetched.data)
    except SpecError as err:
        raise UnsupportedManifestError(f"{ref}: malformed {fetched.media_type}: {err}") from err


def _combined(name: str, failures: list[tuple[str, ImageError]]) -> ImageError:
    """One error for a name no source could serve: the last source's (its class decides
    the gRPC code), its message listing every source's failure in the order tried."""
    if not failures:
        return ContentNotFoundError(f"{name}: no source to pull from")
    last = failures[-1][1]
    if all(isinstance(e, ContentNotFoundError) for _, e in failures) and len(failures) > 1:
        tried = ", ".join(w for w, _ in failures)
        return ContentNotFoundError(f"{name}: not found in any of {tried}", status=404)
    if len(failures) > 1:
        each = "; ".join(f"{where}: {err}" for where, err in failures)
        last.args = (f"{name}: every source failed: {each}",)
    return last


async def pull(
    name: str,
    sink: PullSink,
    *,
    platform: Platform | str | None = None,
    registries: RegistriesConfig | None = None,
    credentials: Credentials | None = None,
    credential_store: CredentialStore | None = None,
    max_concurrent_downloads: int = 4,
    progress_timeout: float | None = 60.0,
    progress: ProgressCallback | None = None,
    policy: Policy | None = None,
    registries_d: RegistriesD | None = None,
) -> PullResult:
    """Pull ``name`` into ``sink`` with a one-off :class:`Puller`."""
    async with Puller(
        registries=registries,
        policy=policy,
        registries_d=registries_d,
        credentials=credential_store,
        max_concurrent_downloads=max_concurrent_downloads,
        progress_timeout=progress_timeout,
    ) as puller:
        return await puller.pull(
            name, sink, platform=platform, credentials=credentials, progress=progress
        )


def pull_sync(
    name: str,
    sink: PullSink,
    *,
    platform: Platform | str | None = None,
    registries: RegistriesConfig | None = None,
    credentials: Credentials | None = None,
    credential_store: CredentialStore | None = None,
    max_concurrent_downloads: int = 4,
    progress_timeout: float | None = 60.0,
    progress: ProgressCallback | None = None,
    policy: Policy | None = None,
    registries_d: RegistriesD | None = None,
) -> PullResult:
    """:func:`pull` for synchronous code (runs its own event loop)."""
    return asyncio.run(
        pull(
            name,
            sink,
            platform=platform,
            registries=registries,
            credentials=credentials,
            credential_store=credential_store,
            max_concurrent_downloads=max_concurrent_downloads,
            progress_timeout=progress_timeout,
            progress=progress,
            policy=policy,
            registries_d=registries_d,
        )
    )
