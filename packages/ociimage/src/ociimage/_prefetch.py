"""``ociimage pull``'s first manifest request, sent while the command still imports.

The command knows its image before it has imported the pull stack (asyncio, the client,
the models: most of its start-up). Once registries.conf is read, :func:`start_for` sends
in one thread what :class:`~ociimage.client.RegistryClient` will send first: for an
insecure host the TLS probe, then the GET of the manifest from the image's first source
(the first mirror, else the registry), with the same headers. When the client then
makes that very request (same host and insecure flag for the probe; same URL, headers
and size limit for the GET) it takes the prefetched answer instead of asking again. A
different first request, an answer other than 200 (a 401 challenge, a 404, a 5xx), a
broken connection or anything else unusual: the answer is dropped and the client sends
its own request as it always does. A probe or GET that timed out is taken as the
client's own would have been (it would have waited as long): the client reports it.

Each answer is taken at most once, by the first request of its kind; only the CLI ever
starts a prefetch (a library user never has one pending).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ociimage._bodies_threaded import Answer
    from ociimage.registries import RegistriesConfig

__all__ = ["Prefetch", "claim_answer", "claim_scheme", "start", "start_for"]


class Prefetch:
    """One probe-and-GET in a thread; its outcomes are futures the client may claim.

    ``probe`` resolves to "https" or "http" for an insecure host (None: the client
    probes itself), or raises the probe's :class:`TimeoutError`. ``answer`` resolves to
    the URL asked and its 200 :class:`Answer` (None: the client asks again), or raises
    the GET's :class:`TimeoutError`.
    """

    def __init__(
        self,
        *,
        host: str,
        insecure: bool,
        path: str,
        headers: dict[str, str],
        limit: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.host = host
        self.insecure = insecure
        self.path = path
        self.headers = headers
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.probe: Future[str | None] = Future()
        self.answer: Future[tuple[str, Answer | None]] = Future()

    def start(self) -> None:
        threading.Thread(target=self.run, name="ociimage-prefetch", daemon=True).start()

    def run(self) -> None:
        """Probe and GET (in the prefetch thread); every outcome lands in the futures."""
        try:
            self._run()
        except BaseException:
            for future in (self.probe, self.answer):
                if not future.done():
                    future.set_result(None)  # type: ignore[arg-type]

    def _run(self) -> None:
        from ociimage._bodies_threaded import ThreadedBodies, Transfer
        from ociimage.tls import TLSConfig

        bodies = ThreadedBodies(
            ssl_context=TLSConfig().context(self.host, insecure=self.insecure),
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )
        try:
            scheme = "https"
            if self.insecure:
                # as RegistryClient._url: TLS without verification, else plain HTTP
                try:
                    scheme = "https" if bodies.tls_answers(self.host, Transfer()) else "http"
                except TimeoutError as err:
                    self.probe.set_exception(err)
                    self.answer.set_result(("", None))
                    return
            self.probe.set_result(scheme)
            url = f"{scheme}://{self.host}{self.path}"
            try:
                answer = bodies.get(url, dict(self.headers), self.limit, Transfer())
            except TimeoutError as err:
                self.answer.set_exception(err)
                return
            except Exception:
                answer = None
            self.answer.set_result((url, answer))
        finally:
            bodies.close()


#: The prefetch whose probe, and the one whose answer, no client has claimed yet.
_probe: Prefetch | None = None
_answer: Prefetch | None = None


def start(prefetch: Prefetch) -> None:
    """Make ``prefetch`` the pending one and start it."""
    global _probe, _answer
    _probe = _answer = prefetch
    prefetch.start()


def start_for(conf: RegistriesConfig, name: str, progress_timeout: float | None) -> None:
    """Prefetch what a :class:`~ociimage.pull.Puller` with ``conf`` (and default TLS,
    limits and timeouts) asks first to pull ``name``; nothing when ``name`` cannot be
    pulled as it is (the pull reports why)."""
    from ociimage._wire import MANIFEST_ACCEPT, plain_headers
    from ociimage.errors import ImageError
    from ociimage.limits import DEFAULT_LIMITS

    try:
        candidates = conf.resolve(name).candidates
        sources = conf.pull_sources(candidates[0]) if candidates else []
    except ImageError:
        return
    if not sources:
        return
    ref = sources[0].reference
    start(
        Prefetch(
            host=ref.domain,
            insecure=sources[0].insecure or conf.is_insecure(ref.domain),
            path=f"/v2/{ref.path}/manifests/{ref.manifest_reference}",
            headers=plain_headers({"Accept": MANIFEST_ACCEPT}),
            limit=DEFAULT_LIMITS.max_manifest_bytes,
            # as RegistryClient's defaults (a 60 s timeout)
            connect_timeout=15.0,
            read_timeout=progress_timeout if progress_timeout is not None else 60.0,
        )
    )


def claim_scheme(host: str, insecure: bool) -> Future[str | None] | None:
    """The pending probe, if it is of ``host`` as ``insecure``; any client's first
    probe ends it."""
    global _probe
    pending, _probe = _probe, None
    if pending is None or (pending.host, pending.insecure) != (host, insecure):
        return None
    return pending.probe


def claim_answer(
    host: str, path: str, headers: dict[str, str], limit: int
) -> Future[tuple[str, Answer | None]] | None:
    """The pending answer, if it is for this request to ``host`` (the caller compares
    the URL, scheme included, once it is there); any client's first GET ends it."""
    global _answer
    pending, _answer = _answer, None
    if pending is None:
        return None
    if (host, path, headers, limit) != (pending.host, pending.path, pending.headers, pending.limit):
        return None
    return pending.answer
