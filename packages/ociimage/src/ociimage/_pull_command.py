"""``ociimage pull`` itself, without typer: shared by the typer command and the fast entry.

typer (with click, pydantic and rich) costs about 0.1 s and 10 MiB before a byte moves;
:mod:`ociimage.entry` parses ``pull`` with argparse and calls :func:`run_pull` directly,
the typer command in :mod:`ociimage.cli` calls the same function, so both behave alike.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ociimage.errors import (
    AuthenticationError,
    BlockedRegistryError,
    ConfigFileError,
    ContentNotFoundError,
    ImageError,
    IntegrityError,
    InvalidReferenceError,
    PolicyRejectedError,
    ProgressTimeoutError,
    RegistryUnavailableError,
    ShortNameError,
)
from ociimage.registries import DEFAULT_REGISTRIES_CONF, RegistriesConfig, load_registries_conf

if TYPE_CHECKING:
    # the rest of the pull stack loads with run_pull: the CLI reads registries.conf and
    # starts its first request (ociimage._prefetch) before importing it
    from ociimage.auth import CredentialStore
    from ociimage.policy import Policy
    from ociimage.pull_result import ProgressCallback, ProgressEvent, PullResult
    from ociimage.registries_d import RegistriesD
    from ocispec.image import Descriptor

__all__ = ["EXIT_CODES", "MAX_CONCURRENT", "ConfigExit", "PullOptions", "exit_code", "run_pull"]

EXIT_CODES: dict[type[ImageError], int] = {
    ContentNotFoundError: 3,
    AuthenticationError: 4,
    IntegrityError: 5,
    RegistryUnavailableError: 6,
    ProgressTimeoutError: 6,
    InvalidReferenceError: 7,
    ConfigFileError: 7,
    ShortNameError: 7,
    BlockedRegistryError: 7,
    PolicyRejectedError: 8,
}


class ConfigExit(Exception):  # noqa: N818 - a control-flow signal, not an error type
    """A configuration file could not be used: the message was printed, exit with 7."""


def exit_code(err: ImageError) -> int:
    """The documented exit code for ``err`` (1 for any other ociimage error)."""
    for cls in type(err).__mro__:
        code = EXIT_CODES.get(cls)
        if code is not None:
            return code
    return 1


def error(message: str) -> None:
    print(f"ociimage: error: {message}", file=sys.stderr)


def registries(path: Path | None, insecure: list[str] | None) -> RegistriesConfig:
    try:
        config = load_registries_conf(path if path is not None else DEFAULT_REGISTRIES_CONF)
    except ConfigFileError as err:
        error(str(err))
        raise ConfigExit from err
    return config.with_insecure(insecure or [])


def credential_store(authfile: Path | None) -> CredentialStore:
    from ociimage.auth import CredentialStore, default_auth_files

    try:
        return CredentialStore([authfile] if authfile is not None else default_auth_files())
    except ConfigFileError as err:
        error(str(err))
        raise ConfigExit from err


def policy(path: Path | None) -> Policy | None:
    from ociimage.policy import DEFAULT_POLICY, load_policy

    if path is None and not DEFAULT_POLICY.exists():
        return None
    try:
        return load_policy(path if path is not None else DEFAULT_POLICY)
    except ConfigFileError as err:
        error(str(err))
        raise ConfigExit from err


def registries_d(path: Path | None) -> RegistriesD | None:
    from ociimage.registries_d import DEFAULT_REGISTRIES_D, load_registries_d

    if path is None and not DEFAULT_REGISTRIES_D.is_dir():
        return None

    try:
        return load_registries_d(path if path is not None else DEFAULT_REGISTRIES_D)
    except ConfigFileError as err:
        error(str(err))
        raise ConfigExit from err


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


@contextmanager
def progress_display(quiet: bool, as_json: bool) -> Iterator[ProgressCallback | None]:
    """Rich bars per layer on a terminal, plain lines otherwise, nothing when quiet/json."""
    if quiet or as_json:
        yield None
        return
    from ociimage.pull_result import ProgressKind

    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),  # stdout stays for the result
            transient=False,
        ) as bars:
            tasks: dict[str, Any] = {}

            def on_event(event: ProgressEvent) -> None:
                d = event.descriptor
                if d.digest not in tasks:
                    label = f"{_short(d.digest)}" + (
                        " exists" if event.kind == ProgressKind.EXISTS else ""
                    )
                    tasks[d.digest] = bars.add_task(label, total=d.size)
                completed = (
                    d.size if event.kind in (ProgressKind.EXISTS, ProgressKind.DONE) else event.done
                )
                bars.update(tasks[d.digest], completed=completed)

            yield on_event
        return

    def on_line(event: ProgressEvent) -> None:
        if event.kind == ProgressKind.PROGRESS:
            return
        d = event.descriptor
        print(f"{event.kind.value:8} {d.digest} {d.size} bytes", file=sys.stderr)

    yield on_line


def _descriptor_doc(d: Descriptor | None) -> dict[str, Any] | None:
    return None if d is None else d.to_dict()


#: Layers downloaded at once by default: 6, as skopeo (containers/image) does. With
#: fewer, an image of one layer more than the limit downloads its last layer alone,
#: on one core, after the others.
MAX_CONCURRENT = 6


class PullOptions:
    """Everything ``ociimage pull`` takes (see its ``--help``).

    A plain class, not a dataclass: building a dataclass costs the command's start-up
    about a millisecond (it compiles its methods).
    """

    __slots__ = (
        "as_json",
        "authfile",
        "directory",
        "insecure_registry",
        "max_concurrent",
        "platform",
        "policy",
        "progress_timeout",
        "quiet",
        "reference",
        "registries_conf",
        "registries_d",
    )

    def __init__(
        self,
        *,
        reference: str,
        directory: Path,
        platform: str | None = None,
        authfile: Path | None = None,
        registries_conf: Path | None = None,
        insecure_registry: list[str] | None = None,
        policy: Path | None = None,
        registries_d: Path | None = None,
        max_concurrent: int = MAX_CONCURRENT,
        progress_timeout: float = 60.0,
        as_json: bool = False,
        quiet: bool = False,
    ) -> None:
        self.reference = reference
        self.directory = directory
        self.platform = platform
        self.authfile = authfile
        self.registries_conf = registries_conf
        self.insecure_registry = list(insecure_registry or [])
        self.policy = policy
        self.registries_d = registries_d
        self.max_concurrent = max_concurrent
        self.progress_timeout = progress_timeout
        self.as_json = as_json
        self.quiet = quiet

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"PullOptions({shown})"


def run_pull(opts: PullOptions, *, registries_conf: RegistriesConfig | None = None) -> int:
    """Pull as the command does: output on stdout/stderr; the exit code is returned.

    ``registries_conf`` is the configuration ``opts`` names when the caller loaded it
    already (the CLI does, to start its first request early).
    """
    import asyncio

    from ociimage.client import use_large_reads
    from ociimage.layout import OCILayoutSink
    from ociimage.pull import Puller

    use_large_reads()  # the CLI owns its process
    try:
        conf = registries_conf or registries(opts.registries_conf, opts.insecure_registry)
        store = credential_store(opts.authfile)
        trust = policy(opts.policy)
        # where signatures live matters only to a policy that checks them (yaml then)
        checks = trust is not None and trust.checks_signatures
        signature_storage = registries_d(opts.registries_d) if checks else None
    except ConfigExit:
        return 7

    async def run() -> PullResult:
        sink = OCILayoutSink(opts.directory)
        with progress_display(opts.quiet, opts.as_json) as progress:
            async with Puller(
                registries=conf,
                credentials=store,
                max_concurrent_downloads=opts.max_concurrent,
                progress_timeout=opts.progress_timeout,
                policy=trust,
                registries_d=signature_storage,
            ) as puller:
                return await puller.pull(
                    opts.reference, sink, platform=opts.platform, progress=progress
                )

    existed = opts.directory.exists()
    try:
        result = asyncio.run(run())
    except BaseException as err:
        if not existed:
            # a failed pull leaves nothing behind where there was nothing (a layout that
            # was there keeps its images: only verified blobs may have been added)
            import shutil

            shutil.rmtree(opts.directory, ignore_errors=True)
        if isinstance(err, KeyboardInterrupt):
            return 130
        if not isinstance(err, ImageError):
            raise
        error(str(err))
        for note in getattr(err, "__notes__", []):
            print(f"ociimage:   {note}", file=sys.stderr)
        return exit_code(err)
    if opts.as_json:
        import json

        doc = {
            "reference": str(result.image.reference),
            "names": result.names,
            "repo_digest": result.repo_digest,
            "manifest": _descriptor_doc(result.manifest),
            "index": _descriptor_doc(result.index),
            "source": str(result.image.source.reference),
            "downloaded_bytes": result.downloaded_bytes,
            "policy_scope": result.policy.scope if result.policy else None,
            "layout": str(opts.directory),
        }
        print(json.dumps(doc, indent=2))
    elif not opts.quiet:
        print(result.repo_digest)
    return 0
