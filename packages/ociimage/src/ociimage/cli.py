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
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ociimage import _pull_command as command
from ociimage._pull_command import EXIT_CODES, ConfigExit, PullOptions, exit_code, run_pull
from ociimage.auth import CredentialStore
from ociimage.errors import ImageError
from ociimage.policy import DEFAULT_POLICY, Policy
from ociimage.pull import Puller
from ociimage.push import push_layout
from ociimage.registries import DEFAULT_REGISTRIES_CONF, RegistriesConfig
from ociimage.registries_d import DEFAULT_REGISTRIES_D, RegistriesD

__all__ = ["EXIT_CODES", "app", "main"]

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


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; an ociimage error becomes a message on stderr and its exit code."""
    try:
        return asyncio.run(coro)
    except ImageError as err:
        typer.echo(f"ociimage: error: {err}", err=True)
        for note in getattr(err, "__notes__", []):
            typer.echo(f"ociimage:   {note}", err=True)
        raise typer.Exit(exit_code(err)) from err
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _config(load: Callable[[], T]) -> T:
    """A configuration file loaded, or exit 7 (the message is printed already)."""
    try:
        return load()
    except ConfigExit:
        raise typer.Exit(7) from None


def _registries(path: Path | None, insecure: list[str] | None) -> RegistriesConfig:
    return _config(lambda: command.registries(path, insecure))


def _store(authfile: Path | None) -> CredentialStore:
    return _config(lambda: command.credential_store(authfile))


def _policy(path: Path | None) -> Policy | None:
    return _config(lambda: command.policy(path))


def _registries_d(path: Path | None) -> RegistriesD | None:
    return _config(lambda: command.registries_d(path))


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
    max_concurrent: Annotated[
        int, typer.Option(help="parallel layer downloads (6, as skopeo)", min=1)
    ] = command.MAX_CONCURRENT,
    progress_timeout: Annotated[
        float, typer.Option(help="fail when a transfer stalls this many seconds")
    ] = 60.0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pull REFERENCE into the OCI image layout DIRECTORY."""
    code = run_pull(
        PullOptions(
            reference=reference,
            directory=directory,
            platform=platform,
            authfile=authfile,
            registries_conf=registries_conf,
            insecure_registry=list(insecure_registry or []),
            policy=policy,
            registries_d=registries_d,
            max_concurrent=max_concurrent,
            progress_timeout=progress_timeout,
            as_json=as_json,
            quiet=quiet,
        )
    )
    if code:
        raise typer.Exit(code)


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
