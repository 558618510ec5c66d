"""The ``crid`` console script's entry point, kept light for the daemon.

typer, click and rich cost about 17 MiB of resident memory for as long as a process
lives, and the daemon runs for months. So ``crid serve`` with its usual arguments
(``--config FILE``/``-c FILE``/``--config=FILE``, ``--init-defaults``) is parsed here by
hand (argparse and gettext would stay resident too) and runs :func:`run_daemon`; every
other command, any other spelling of serve's arguments (abbreviations, mistakes), and
all help go through the typer application in :mod:`crid.cli`, which also calls
:func:`run_daemon` for ``serve`` and reports bad arguments.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

__all__ = ["main", "run_daemon"]


def run_daemon(config_path: Path | None, *, init_defaults: bool) -> int:
    """Load the configuration and serve until SIGTERM/SIGINT; the process exit status.

    2: the configuration is invalid; 1: crid could not start or failed; 0: clean stop.
    """
    from crid.config import load_config
    from crid.defaults import write_default_cni_config
    from crid.errors import CridError
    from crid.heap import limit_arenas, trimmed_heap
    from crid.logs import configure_logging
    from crid.server import serve
    from ocistore.errors import StoreError

    limit_arenas()  # before grpc, the executor and the pools start their threads

    async def serve_trimmed() -> None:
        async with trimmed_heap():
            await serve(config)

    try:
        config = load_config(config_path)
    except CridError as err:
        print(f"crid: {err}", file=sys.stderr)
        return 2
    configure_logging(config.crid.log_level, config.crid.log_format)
    try:
        if init_defaults:
            write_default_cni_config(Path(config.crid.network.network_dir))
        asyncio.run(serve_trimmed())
    except (CridError, StoreError) as err:
        print(f"crid: {err}", file=sys.stderr)
        return 1
    return 0


def serve_arguments(argv: list[str]) -> tuple[Path | None, bool] | None:
    """``serve``'s (config file, init defaults) from ``argv``; None for anything else
    (help, abbreviations, unknown or incomplete options: the typer application's)."""
    config: Path | None = None
    init_defaults = False
    rest = iter(argv)
    for arg in rest:
        if arg == "--init-defaults":
            init_defaults = True
        elif arg in ("--config", "-c"):
            value = next(rest, None)
            if value is None or value.startswith("-"):
                return None
            config = Path(value)
        elif arg.startswith("--config=") and len(arg) > len("--config="):
            config = Path(arg.removeprefix("--config="))
        else:
            return None
    return config, init_defaults


def main() -> None:
    """Entry point of the ``crid`` console script."""
    argv = sys.argv[1:]
    arguments = serve_arguments(argv[1:]) if argv[:1] == ["serve"] else None
    if arguments is not None:
        config, init_defaults = arguments
        sys.exit(run_daemon(config, init_defaults=init_defaults))
    from crid.cli import app

    app()
