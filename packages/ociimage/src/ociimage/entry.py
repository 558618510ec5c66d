"""The ``ociimage`` console script's entry point, kept light for ``pull``.

``ociimage pull`` (without ``--help``) is parsed here with argparse and runs
:func:`ociimage._pull_command.run_pull` at once; every other command, all help and any
command line argparse does not take as is go through the typer application in
:mod:`ociimage.cli`, which runs the same function for ``pull``. typer imports click,
pydantic and rich: about 0.1 s and 10 MiB before the first byte of a pull.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path
from typing import NoReturn

__all__ = ["main", "pull_parser"]


class _UnparsedError(Exception):
    """argparse did not take the command line: typer will, and reports any error."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UnparsedError(message)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def pull_parser() -> argparse.ArgumentParser:
    """The options of ``ociimage pull``, as :mod:`ociimage.cli` declares them."""
    parser = _Parser(prog="ociimage pull", add_help=False, exit_on_error=False)
    parser.add_argument("reference")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--platform")
    parser.add_argument("--authfile", type=Path)
    parser.add_argument("--registries-conf", type=Path)
    parser.add_argument("--insecure-registry", action="append", default=[])
    parser.add_argument("--policy", type=Path)
    parser.add_argument("--registries-d", type=Path)
    parser.add_argument("--max-concurrent", type=_at_least_one, default=4)
    parser.add_argument("--progress-timeout", type=float, default=60.0)
    parser.add_argument("--json", dest="as_json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true")
    return parser


def _fast_pull(argv: list[str]) -> int | None:
    """The exit code of ``pull`` run here, or None to leave ``argv`` to typer."""
    if argv[:1] != ["pull"] or {"-h", "--help", "--"} & set(argv):
        return None
    try:
        parsed, rest = pull_parser().parse_known_args(argv[1:])
    except (argparse.ArgumentError, _UnparsedError):
        return None  # typer reports usage errors (exit code 2)
    if rest:
        return None
    gc.disable()  # importing creates tens of thousands of objects and no garbage
    # the whole pull stack, so that the freeze below covers it
    from ociimage._pull_command import PullOptions, run_pull
    from ociimage.layout import OCILayoutSink  # noqa: F401
    from ociimage.pull import Puller  # noqa: F401

    gc.freeze()  # what the imports made lives as long as the process: never scan it
    gc.enable()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    return run_pull(PullOptions(**vars(parsed)))


def main() -> None:
    """Entry point of the ``ociimage`` console script."""
    code = _fast_pull(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from ociimage.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
