"""The ``ociimage`` command: pull to an OCI layout, inspect, push, without any daemon.

Exit codes scripts can rely on:

====  ==========================================================
0     success
1     any other ociimage error
2     usage error (bad option or argument)
3     the image, tag or a blob does not exist
4     authentication failed
5     content failed verification (digest or size mismatch)
6     registry unreachable, kept failing, or stalled past the progress timeout
7     invalid reference, or a configuration file is malformed
8     the signature policy rejected the image
====  ==========================================================

``pull`` and ``policy check`` enforce ``--policy`` (default: /etc/containers/policy.json
when it exists). A failed ``pull`` writes nothing: the layout directory is created only
once the policy accepted the image, and removed again if the pull then fails and it did
not exist before; an existing layout keeps every image it had.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ociimage.auth import CredentialStore, default_auth_files
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
from ociimage.layout import OCILayoutSink
from ociimage.policy import DEFAULT_POLICY, Policy, load_policy
from ociimage.pull import ProgressCallback, ProgressEvent, ProgressKind, Puller
from ociimage.push import push_layout
from ociimage.registries import DEFAULT_REGISTRIES_CONF, RegistriesConfig, load_registries_conf
from ociimage.registries_d import DEFAULT_REGISTRIES_D, RegistriesD, load_registries_d
from ocispec.image import Descriptor

__all__ = ["EXIT_CODES", "app", "main"]

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

app = typer.Typer(
    name="ociimage",
    help="Pull, inspect and push OCI images without a daemon.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help text is plain text: "os/arch[/variant]" must not be read as rich markup
    rich_markup_mode=None,
)

T = TypeVar("T")

PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="os/arch[/variant] (default: this host's)")
]
AuthfileOpt = Annotated[
    Path | None, typer.Option("--authfile", help="auth.json to read credentials from")
]
RegistriesOpt = Annotated[
    Path | None,
    typer.Option("--registries-conf", help=f"registries.conf (default {DEFAULT_REGISTRIES_CONF})"),
]
InsecureOpt = Annotated[
    list[str] | None,
    typer.Option("--insecure-registry", help="host[:port] reachable over HTTP/unverified TLS"),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help=f"policy.json (default {DEFAULT_POLICY} when it exists)"),
]
RegistriesDOpt = Annotated[
    Path | None,
    typer.Option(
        "--registries-d",
        help=f"registries.d directory (default {DEFAULT_REGISTRIES_D} when it exists)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result as JSON")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="print nothing but errors")]


def _exit_code(err: ImageError) -> int:
    for cls in type(err).__mro__:
        code = EXIT_CODES.get(cls)
        if code is not None:
            return code
    return 1


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; an ociimage error becomes a message on stderr and its exit code."""
    try:
        return asyncio.run(coro)
    except ImageError as err:
        typer.echo(f"ociimage: error: {err}", err=True)
        for note in getattr(err, "__notes__", []):
            typer.echo(f"ociimage:   {note}", err=True)
        raise typer.Exit(_exit_code(err)) from err
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _registries(path: Path | None, insecure: list[str] | None) -> RegistriesConfig:
    try:
        config = load_registries_conf(path if path is not None else DEFAULT_REGISTRIES_CONF)
    except ConfigFileError as err:
        typer.echo(f"ociimage: error: {err}", err=True)
        raise typer.Exit(7) from err
    return config.with_insecure(insecure or [])


def _store(authfile: Path | None) -> CredentialStore:
    try:
        return CredentialStore([authfile] if authfile is not None else default_auth_files())
    except ConfigFileError as err:
        typer.echo(f"ociimage: error: {err}", err=True)
        raise typer.Exit(7) from err


def _policy(path: Path | None) -> Policy | None:
    if path is None and not DEFAULT_POLICY.exists():
        return None
    try:
        return load_policy(path if path is not None else DEFAULT_POLICY)
    except ConfigFileError as err:
        typer.echo(f"ociimage: error: {err}", err=True)
        raise typer.Exit(7) from err


def _registries_d(path: Path | None) -> RegistriesD | None:
    if path is None and not DEFAULT_REGISTRIES_D.is_dir():
        return None
    try:
        return load_registries_d(path if path is not None else DEFAULT_REGISTRIES_D)
    except ConfigFileError as err:
        typer.echo(f"ociimage: error: {err}", err=True)
        raise typer.Exit(7) from err


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


@contextmanager
def _progress_display(quiet: bool, as_json: bool) -> Iterator[ProgressCallback | None]:
    """Rich bars per layer on a terminal, plain lines otherwise, nothing when quiet/json."""
    if quiet or as_json:
        yield None
        return
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
        typer.echo(f"{event.kind.value:8} {d.digest} {d.size} bytes", err=True)

    yield on_line


def _descriptor_doc(d: Descriptor | None) -> dict[str, Any] | None:
    return None if d is None else d.to_dict()


@app.command()
def pull(
    reference: Annotated[str, typer.Argument(help="image reference, e.g. quay.io/ns/app:1")],
    directory: Annotated[Path, typer.Argument(help="OCI layout directory to write")],
    platform: PlatformOpt = None,
    authfile: AuthfileOpt = None,
    registries_conf: RegistriesOpt = None,
    insecure_registry: InsecureOpt = None,
    policy: PolicyOpt = None,
    registries_d: RegistriesDOpt = None,
    max_concurrent: Annotated[int, typer.Option(help="parallel layer downloads", min=1)] = 4,
    progress_timeout: Annotated[
        float, typer.Option(help="fail when a transfer stalls this many seconds")
    ] = 60.0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pull REFERENCE into the OCI image layout DIRECTORY."""
    registries = _registries(registries_conf, insecure_registry)
    store = _store(authfile)
    trust = _policy(policy)
    signature_storage = _registries_d(registries_d)

    async def run() -> Any:
        sink = OCILayoutSink(directory)
        with _progress_display(quiet, as_json) as progress:
            async with Puller(
                registries=registries,
                credentials=store,
                max_concurrent_downloads=max_concurrent,
                progress_timeout=progress_timeout,
                policy=trust,
                registries_d=signature_storage,
            ) as puller:
                return await puller.pull(reference, sink, platform=platform, progress=progress)

    existed = directory.exists()
    try:
        result = _run(run())
    except BaseException:
        if not existed:
            # a failed pull leaves nothing behind where there was nothing (a layout that
            # was there keeps its images: only verified blobs may have been added)
            shutil.rmtree(directory, ignore_errors=True)
        raise
    if as_json:
        doc = {
            "reference": str(result.image.reference),
            "names": result.names,
            "repo_digest": result.repo_digest,
            "manifest": _descriptor_doc(result.manifest),
            "index": _descriptor_doc(result.index),
            "source": str(result.image.source.reference),
            "downloaded_bytes": result.downloaded_bytes,
            "policy_scope": result.policy.scope if result.policy else None,
            "layout": str(directory),
        }
        typer.echo(json.dumps(doc, indent=2))
    elif not quiet:
        typer.echo(result.repo_digest)


@app.command()
def inspect(
    reference: Annotated[str, typer.Argument(help="image reference")],
    platform: PlatformOpt = None,
    authfile: AuthfileOpt = None,
    registries_conf: RegistriesOpt = None,
    insecure_registry: InsecureOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="print the manifest bytes as sent")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show an image's manifest, config and platforms without downloading layers."""
    registries = _registries(registries_conf, insecure_registry)
    store = _store(authfile)

    async def run() -> Any:
        async with Puller(registries=registries, credentials=store) as puller:
            return await puller.resolve(reference, platform=platform)

    image = _run(run())
    if raw:
        sys.stdout.buffer.write(image.top.data)
        sys.stdout.flush()
        return
    doc = {
        "name": str(image.reference),
        "digest": image.digest,
        "repo_digest": image.repo_digest,
        "media_type": image.top.media_type,
        "platforms": [str(p) for p in image.platforms],
        "manifest": json.loads(image.manifest.data),
        "manifest_digest": image.manifest.digest,
        "config": json.loads(image.config_data),
        "layers": [layer.to_dict() for layer in image.image_manifest.layers],
        "source": str(image.source.reference),
    }
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    cfg = image.config
    typer.echo(f"Name:          {doc['name']}")
    typer.echo(f"Digest:        {image.digest}")
    if image.platforms:
        typer.echo(f"Platforms:     {', '.join(doc['platforms'])}")
    typer.echo(f"Platform:      {cfg.platform}")
    typer.echo(f"Created:       {cfg.created or '-'}")
    typer.echo(f"Entrypoint:    {list(cfg.config.entrypoint)}")
    typer.echo(f"Cmd:           {list(cfg.config.cmd)}")
    typer.echo(f"Layers:        {len(image.image_manifest.layers)}")
    for layer in image.image_manifest.layers:
        typer.echo(f"  {layer.digest} {layer.size}")


@app.command()
def push(
    directory: Annotated[Path, typer.Argument(help="OCI layout directory")],
    reference: Annotated[str, typer.Argument(help="where to push, e.g. localhost:5000/app:1")],
    name: Annotated[
        str | None, typer.Option("--name", help="layout entry to push (default: the only one)")
    ] = None,
    authfile: AuthfileOpt = None,
    registries_conf: RegistriesOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Push an image from the OCI layout DIRECTORY to REFERENCE."""
    registries = _registries(registries_conf, insecure_registry)
    store = _store(authfile)
    result = _run(
        push_layout(directory, reference, name=name, registries=registries, credential_store=store)
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "reference": result.reference,
                    "repo_digest": result.repo_digest,
                    "descriptor": result.descriptor.to_dict(),
                    "blobs": result.blobs,
                },
                indent=2,
            )
        )
    elif not quiet:
        typer.echo(result.repo_digest)


policy_app = typer.Typer(
    help="Signature policy (policy.json) tools.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def policy_check(
    reference: Annotated[str, typer.Argument(help="image reference")],
    policy: PolicyOpt = None,
    registries_d: RegistriesDOpt = None,
    platform: PlatformOpt = None,
    authfile: AuthfileOpt = None,
    registries_conf: RegistriesOpt = None,
    insecure_registry: InsecureOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate the signature policy for REFERENCE without downloading layers."""
    registries = _registries(registries_conf, insecure_registry)
    store = _store(authfile)
    trust = _policy(policy)
    if trust is None:
        typer.echo(
            f"ociimage: error: no policy given and {DEFAULT_POLICY} does not exist", err=True
        )
        raise typer.Exit(7)

    async def run() -> Any:
        async with Puller(
            registries=registries,
            credentials=store,
            policy=trust,
            registries_d=_registries_d(registries_d),
        ) as puller:
            image = await puller.resolve(reference, platform=platform)
            return image, await puller.check_policy(image)

    image, decision = _run(run())
    if as_json:
        doc = {
            "image": decision.image,
            "digest": image.digest,
            "evaluated_digest": decision.digest,
            "accepted": True,
            "scope": decision.scope,
            "requirements": list(decision.requirements),
            "signatures": decision.signatures,
        }
        typer.echo(json.dumps(doc, indent=2))
    elif not quiet:
        typer.echo(
            f"{decision.image} accepted: scope {decision.scope!r}, "
            f"requirements {', '.join(decision.requirements)}"
        )


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    app()


if __name__ == "__main__":
    main()
