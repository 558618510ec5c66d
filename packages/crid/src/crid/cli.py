"""The ``crid`` command: serve, version, config, and the operator commands.

Exit codes scripts can rely on: 0 success (``check``: storage sound or repaired);
1 the operation found a problem (``check``: damage left; ``wipe``: refused while
containers run; ``status``: the daemon did not answer); 2 bad configuration or
arguments; 3 ``check``/``wipe`` refused because crid is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crid import __version__
from crid.config import Config, load_config, render_config
from crid.entry import run_daemon
from crid.errors import CridError, SocketInUseError
from crid.oci import conmon_binary, conmon_version, runtime_binary, runtime_version
from crid.services.runtime import CRI_API_VERSION
from ocistore import StoreError

if TYPE_CHECKING:
    from crid.opsview import StatusClient

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
def show_config(
    config: ConfigOption = None,
    from_crio: Annotated[
        Path | None,
        typer.Option(
            "--from-crio",
            help="Convert this CRI-O configuration (and its .d drop-ins) instead; keys crid"
            " has no equivalent for are listed on stderr.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Print the effective configuration as commented TOML."""
    if from_crio is None:
        sys.stdout.write(render_config(_load(config)))
        return
    from crid.config.crio import convert_crio, read_crio

    try:
        converted, left_out = convert_crio(read_crio(from_crio))
    except CridError as err:
        typer.echo(f"crid: {err}", err=True)
        raise typer.Exit(EXIT_CONFIG) from err
    for key in left_out:
        typer.echo(f"crid: left out {key}: crid has no such option or keeps its own", err=True)
    sys.stdout.write(render_config(converted))


EXIT_PROBLEM = 1
EXIT_CONFIG = 2
EXIT_DAEMON_RUNNING = 3

status_app = typer.Typer(
    help="Ask the running daemon over its socket: configuration, info, containers.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(status_app, name="status")

SocketOption = Annotated[
    str | None,
    typer.Option("--socket", "-s", help="CRI socket of the daemon (default: [crid.api] listen)."),
]


def _status_client(config: Path | None, socket: str | None) -> StatusClient:
    from crid.opsview import StatusClient

    return StatusClient(socket or _load(config).crid.api.listen)


def _ask(config: Path | None, socket: str | None, ask: Callable[[StatusClient], str]) -> None:
    import grpc

    client = _status_client(config, socket)
    try:
        typer.echo(ask(client))
    except grpc.RpcError as err:
        text = str(err)
        code = getattr(err, "code", lambda: None)()
        detail = getattr(err, "details", lambda: text)()
        name = code.name if isinstance(code, grpc.StatusCode) else "error"
        typer.echo(f"crid: {client.socket_path}: {name}: {detail}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from err
    finally:
        client.close()


@status_app.command("config")
def status_config(config: ConfigOption = None, socket: SocketOption = None) -> None:
    """Print the running daemon's effective configuration as TOML."""
    _ask(config, socket, lambda client: client.config_text().rstrip("\n"))


@status_app.command("info")
def status_info(config: ConfigOption = None, socket: SocketOption = None) -> None:
    """Print the daemon's version, cgroup and storage drivers, paths and conditions."""
    _ask(config, socket, lambda client: "\n".join(client.info_lines()))


@status_app.command("containers")
def status_containers(
    config: ConfigOption = None,
    socket: SocketOption = None,
    container_id: Annotated[
        str | None,
        typer.Option("--id", "-i", help="Show this container (id or unique prefix) as JSON."),
    ] = None,
) -> None:
    """List containers and their pods, or show one container."""
    if container_id is None:
        _ask(config, socket, lambda client: "\n".join(client.containers_lines()))
    else:
        _ask(config, socket, lambda client: client.container_json(container_id))


def _offline(config: Path | None) -> tuple[Config, contextlib.AbstractContextManager[None]]:
    from crid.node import daemon_lock

    cfg = _load(config)
    return cfg, daemon_lock(cfg)


@app.command()
def check(
    config: ConfigOption = None,
    repair: Annotated[
        bool, typer.Option("--repair", "-r", help="Repair what the check finds.")
    ] = False,
) -> None:
    """Verify storage while crid is stopped: dangling layers, corrupt or missing blobs,
    records pointing at nothing. Exit 0: sound (or repaired); 1: damage remains;
    3: crid is running."""
    from crid.node import check_node
    from crid.opsview import check_lines

    cfg, lock = _offline(config)
    try:
        with lock:
            result = check_node(cfg, repair=repair)
    except SocketInUseError as err:
        typer.echo(f"crid: {err}", err=True)
        raise typer.Exit(EXIT_DAEMON_RUNNING) from err
    except (CridError, StoreError) as err:
        typer.echo(f"crid: {err}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from err
    for line in check_lines(result):
        typer.echo(line)
    if not result.clean_after:
        raise typer.Exit(EXIT_PROBLEM)


@app.command()
def wipe(
    config: ConfigOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", "-f", help="Kill running containers first, then wipe."),
    ] = False,
) -> None:
    """Remove every pod, container and image while crid is stopped. Refuses (exit 1)
    while containers still run unless --force; exit 3 while crid is running."""
    from crid.node import wipe_node
    from crid.opsview import wipe_lines

    cfg, lock = _offline(config)
    try:
        with lock:
            report = wipe_node(cfg, force=force)
    except SocketInUseError as err:
        typer.echo(f"crid: {err}", err=True)
        raise typer.Exit(EXIT_DAEMON_RUNNING) from err
    except (CridError, StoreError) as err:
        typer.echo(f"crid: {err}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from err
    for line in wipe_lines(report):
        typer.echo(line)
    if report.refused:
        raise typer.Exit(EXIT_PROBLEM)
