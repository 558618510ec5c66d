"""Pulling images into crid's store through ociimage, as the CRI's PullImage asks.

Each pull sees the configuration files as they are (registries.conf and its drop-ins,
the signature policy, registries.d, the auth files, certs.d), as CRI-O's do, so editing
them needs no restart: a pull compares their ``stat`` fingerprint with the one the
current ociimage ``Puller`` was built from and builds a new one when they differ.
Pulls share that Puller (connections, tokens, TLS contexts, each registry's scheme);
it is closed ``linger`` seconds after the last pull ended, so an idle crid holds no
registry connection, while back-to-back pulls (a kubelet starting a node's pods, or
critest's benchmark) reuse one warm connection. The first pull imports ociimage's pull
stack, so a crid that never pulls never loads it. Two requests for the same image
(same name, platform and credentials) share one download: the second waits for the
first's result. Pulls of different images running at once share the blobs they have in
common: the shared Puller downloads each digest once, whichever pull's sink (all of
them on this store) asked first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from crid import faults
from crid.config import ImageConfig, parse_duration
from crid.errors import CridError
from crid.images._watch import Fingerprint, fingerprint
from ociimage.auth import Credentials, CredentialStore, default_auth_files
from ociimage.registries import RegistriesConfig, load_registries_conf
from ociimage.singleflight import SingleFlight
from ocistore import AsyncStore, Image

if TYPE_CHECKING:
    from ociimage.pull import Puller
    from ociimage.sink import BlobWriter
    from ocispec.image import Descriptor
    from ocistore.sink import StorePullSink

__all__ = ["ImagePuller", "PullOutcome", "load_registries"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PullOutcome:
    """A finished pull: the stored image and what it cost."""

    image: Image
    repo_digest: str
    downloaded_bytes: int
    seconds: float


def load_registries(config: ImageConfig) -> RegistriesConfig:
    """registries.conf and its drop-in directory, as configured (blocking)."""
    return load_registries_conf(config.registries_conf, config.registries_conf_dir)


def _auth_files(config: ImageConfig) -> Sequence[str | Path]:
    """``global_auth_file`` first, then the standard containers-auth.json(5) files."""
    files: list[str | Path] = list(default_auth_files())
    if config.global_auth_file:
        files.insert(0, config.global_auth_file)
    return files


def _config_fingerprint(config: ImageConfig) -> Fingerprint:
    """The stat fingerprint of every file :meth:`ImagePuller._make_puller` reads."""
    from ociimage.tls import DEFAULT_CERTS_DIRS

    files = [config.registries_conf, config.signature_policy, *_auth_files(config)]
    dirs: list[tuple[str | Path, int]] = [(config.registries_conf_dir, 1), (config.registries_d, 1)]
    dirs += [(d, 2) for d in DEFAULT_CERTS_DIRS]  # certs.d/<host>/*.crt
    return fingerprint(files, dirs)


#: Seconds the shared Puller outlives the last pull (then its connections close).
DEFAULT_LINGER = 10.0


class _Session:
    """One shared Puller, the configuration it was built from, how many pulls use it."""

    def __init__(self, puller: Puller, built_from: Fingerprint) -> None:
        self.puller = puller
        self.built_from = built_from
        self.users = 0
        self.closer: asyncio.TimerHandle | None = None


_FlightKey = tuple[str, str, Credentials | None]


class ImagePuller:
    """Pulls images into ``store`` with the settings of ``config`` (``[crid.image]``)."""

    def __init__(
        self,
        store: AsyncStore,
        config: ImageConfig,
        *,
        on_failure: Callable[[], object] | None = None,
        linger: float = DEFAULT_LINGER,
    ) -> None:
        """``on_failure`` is called after a pull failed or was cancelled (crid asks for
        a store GC there: the pull may have left blobs and layers). ``linger``: seconds
        the shared Puller stays open after the last pull (0 closes it at once)."""
        self._store = store
        self._config = config
        self._on_failure = on_failure
        self._linger = linger
        self._closing: set[asyncio.Task[None]] = set()
        timeout = parse_duration(config.pull_progress_timeout)
        self._progress_timeout = timeout if timeout > 0 else None
        self._session: _Session | None = None
        self._session_lock = asyncio.Lock()
        self._flights: SingleFlight[_FlightKey, PullOutcome] = SingleFlight()

    def _make_puller(self) -> Puller:
        """Read every configuration file the pull depends on (blocking: in a thread).

        The pull stack (httpx, cryptography for signatures, yaml: ~35 MiB) is imported
        here, at the first pull and in this worker thread, not when crid starts.
        """
        from ociimage.policy import load_policy
        from ociimage.pull import Puller
        from ociimage.registries_d import load_registries_d

        config = self._config
        return Puller(
            registries=load_registries(config),
            credentials=CredentialStore(_auth_files(config)),
            policy=load_policy(config.signature_policy),
            registries_d=load_registries_d(config.registries_d),
            progress_timeout=self._progress_timeout,
        )

    def _open_session(self, current: _Session | None) -> _Session | None:
        """A new session when the configuration changed since ``current`` was built
        (or there is none); None to keep ``current``. Blocking: in a thread."""
        seen = _config_fingerprint(self._config)
        if current is not None and current.built_from == seen:
            return None
        return _Session(self._make_puller(), seen)

    async def _acquire(self) -> _Session:
        async with self._session_lock:
            current = self._session
            fresh = await asyncio.to_thread(self._open_session, current)
            if fresh is not None:
                self._session = fresh
                if current is not None and current.users == 0:
                    await self._close(current)  # stale and unused; in use: closed on release
            session = self._session
            assert session is not None
            if session.closer is not None:
                session.closer.cancel()
                session.closer = None
            session.users += 1
            return session

    async def _release(self, session: _Session) -> None:
        async with self._session_lock:
            session.users -= 1
            if session.users:
                return
            if self._session is not session or self._linger <= 0:
                await self._close(session)
                return
            loop = asyncio.get_running_loop()
            session.closer = loop.call_later(self._linger, self._close_idle, session)

    def _close_idle(self, session: _Session) -> None:
        """The linger ran out with no pull: close the connections in the background."""
        task = asyncio.ensure_future(self._close_if_idle(session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_if_idle(self, session: _Session) -> None:
        async with self._session_lock:
            if session.users == 0 and session.closer is not None:
                await self._close(session)

    async def _close(self, session: _Session) -> None:
        if session.closer is not None:
            session.closer.cancel()
            session.closer = None
        if self._session is session:
            self._session = None
        await session.puller.aclose()

    async def aclose(self) -> None:
        """Close the shared Puller now (crid's shutdown); later pulls open another."""
        async with self._session_lock:
            if self._session is not None and self._session.users == 0:
                await self._close(self._session)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @property
    def connected(self) -> bool:
        """Whether a Puller (and so possibly registry connections) is open."""
        return self._session is not None

    async def pull(
        self, name: str, *, credentials: Credentials | None = None, platform: str = ""
    ) -> PullOutcome:
        """Pull ``name`` (for ``platform``, default the host's) and return the stored image.

        ``credentials`` None means "from the auth files". Errors are ociimage's and
        ocistore's exceptions, unchanged.
        """
        key: _FlightKey = (name, platform, credentials)
        if self._flights.in_flight(key):
            _log.info("pull joined", extra={"image": name})
        outcome, _started = await self._flights.run(
            key, lambda: self._pull(name, credentials, platform)
        )
        return outcome

    async def _pull(self, name: str, credentials: Credentials | None, platform: str) -> PullOutcome:
        started = time.monotonic()
        session = await self._acquire()
        try:
            with self._store.pull_sink() as sink:
                result = await session.puller.pull(
                    name,
                    _FaultSink(sink) if faults.enabled() else sink,
                    credentials=credentials,
                    platform=platform or None,
                )
        except BaseException:
            if self._on_failure is not None:
                self._on_failure()
            raise
        finally:
            await self._release(session)
        image = sink.image
        if image is None:  # ociimage always commits; a sink left empty is a bug
            raise CridError(f"pull of {name} committed no image to the store")
        if result.repo_digest not in image.repo_digests:
            # a by-digest pull gives the sink no names: record where it came from
            image = await self._store.tag_image(image.id, result.repo_digest)
        seconds = time.monotonic() - started
        _log.info(
            "image pulled",
            extra={
                "image": name,
                "id": image.id,
                "bytes": result.downloaded_bytes,
                "seconds": round(seconds, 3),
            },
        )
        return PullOutcome(
            image=image,
            repo_digest=result.repo_digest,
            downloaded_bytes=result.downloaded_bytes,
            seconds=seconds,
        )


class _FaultSink:
    """The store's sink with the ``pull_image.commit`` fault point (tests only): every
    blob is stored, the image not yet recorded."""

    def __init__(self, sink: StorePullSink) -> None:
        self._sink = sink

    def has_blob(self, digest: str) -> bool:
        return self._sink.has_blob(digest)

    def open_blob(self, descriptor: Descriptor) -> BlobWriter:
        return self._sink.open_blob(descriptor)

    def commit_image(
        self, *, manifest: Descriptor, names: Sequence[str], index: Descriptor | None = None
    ) -> None:
        faults.hit("pull_image.commit")
        self._sink.commit_image(manifest=manifest, names=names, index=index)
