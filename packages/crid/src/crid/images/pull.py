"""Pulling images into crid's store through ociimage, as the CRI's PullImage asks.

Each pull reads the configuration files afresh (registries.conf and its drop-ins, the
signature policy, registries.d, the auth files), as CRI-O does, so editing them needs
no restart. Pulls running at the same time share one ociimage ``Puller`` (connections,
tokens); it is closed when the last of them ends, so an idle crid holds no registry
connection, and the first one imports ociimage's pull stack, so a crid that never pulls
never loads it. Two requests for the same image (same name, platform and credentials)
share one download: the second waits for the first's result. Pulls of different images
running at once share the blobs they have in common: the shared Puller downloads each
digest once, whichever pull's sink (all of them on this store) asked first.
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


class _Session:
    """One shared Puller and how many pulls use it."""

    def __init__(self, puller: Puller) -> None:
        self.puller = puller
        self.users = 0


_FlightKey = tuple[str, str, Credentials | None]


class ImagePuller:
    """Pulls images into ``store`` with the settings of ``config`` (``[crid.image]``)."""

    def __init__(
        self,
        store: AsyncStore,
        config: ImageConfig,
        *,
        on_failure: Callable[[], object] | None = None,
    ) -> None:
        """``on_failure`` is called after a pull failed or was cancelled (crid asks for
        a store GC there: the pull may have left blobs and layers)."""
        self._store = store
        self._config = config
        self._on_failure = on_failure
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

    async def _acquire(self) -> _Session:
        async with self._session_lock:
            if self._session is None:
                self._session = _Session(await asyncio.to_thread(self._make_puller))
            self._session.users += 1
            return self._session

    async def _release(self, session: _Session) -> None:
        async with self._session_lock:
            session.users -= 1
            if session.users == 0:
                if self._session is session:
                    self._session = None
                await session.puller.aclose()

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
