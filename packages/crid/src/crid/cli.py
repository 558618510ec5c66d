"""The ``crid`` command: serve, version, config."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from crid import __version__
from crid.config import Config, load_config, render_config
from crid.entry import run_daemon
from crid.errors import CridError
from crid.oci import conmon_binary, conmon_version, runtime_binary, runtime_version
from crid.services.runtime import CRI_API_VERSION

__all__ = ["app"]

app = typer.Typer(
    help="crid: a Kubernetes container runtime (CRI over gRPC on a unix socket).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help text is plain text, never rich markup (brackets in it would break --help)
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (default /etc/crid/crid.toml); drop-ins in <file>.d/*.toml.",
        dir_okay=False,
    ),
]


def _load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except CridError as err:
        typer.echo(f"crid: {err}", err=True)
        raise typer.Exit(2) from err


@app.command()
def serve(
    config: ConfigOption = None,
    init_defaults: Annotated[
        bool,
        typer.Option(
            "--init-defaults",
            help="Write a default CNI bridge network when the CNI config directory has none.",
        ),
    ] = False,
) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    raise typer.Exit(run_daemon(config, init_defaults=init_defaults))


@app.command()
def version(config: ConfigOption = None) -> None:
    """Print the versions of crid, its OCI runtime and conmon."""
    cfg = _load(config)
    runtime = cfg.crid.runtime
    name = runtime.default_runtime

    async def describe() -> list[str]:
        lines = [f"crid version {__version__}", f"CRI API {CRI_API_VERSION}"]
        runtime_path = runtime_binary(name, runtime.runtimes[name])
        if runtime_path is None:
            lines.append(f"runtime ({name}): not found")
        else:
            lines.append(
                f"runtime ({name}): {await runtime_version(runtime_path)} ({runtime_path})"
            )
        conmon_path = conmon_binary(runtime.conmon)
        if conmon_path is None:
            lines.append("conmon: not found")
        else:
            lines.append(f"conmon: {await conmon_version(conmon_path)} ({conmon_path})")
        return lines

    for line in asyncio.run(describe()):
        typer.echo(line)


@app.command("config")
def show_config(config: ConfigOption = None) -> None:
    """Print the effective configuration as commented TOML."""
    sys.stdout.write(render_config(_load(config)))
