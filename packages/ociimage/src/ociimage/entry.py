"""The ``ociimage`` console script's entry point, kept light for ``pull``.

``ociimage pull`` with the options it documents is parsed here by hand (argparse would
cost about 7 ms of imports and parser building), its first manifest request is started
in a thread while the pull stack is still being imported (see :mod:`ociimage._prefetch`),
and :func:`ociimage._pull_command.run_pull` runs at once. Every other command, all help
and any command line this parser does not take exactly (an unknown option, a value it
cannot convert, a missing or extra argument, ``--``) goes through the typer application
in :mod:`ociimage.cli`, which runs the same function for ``pull`` and reports usage
errors. typer imports click, pydantic and rich: about 0.1 s and 10 MiB before the first
byte of a pull.

Once the pull has run, the console script flushes its output and leaves with
:func:`os._exit`: the interpreter's teardown (freeing every module) is skipped. Nothing
is left to do then: the layout's files are closed and ``index.json`` was renamed into
place before :func:`run_pull` returned.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

__all__ = ["PULL_FLAGS", "PULL_VALUE_OPTIONS", "main", "parse_pull", "run_fast"]

#: ``pull``'s options that take a value, and the :class:`PullOptions` field each sets.
PULL_VALUE_OPTIONS = {
    "--platform": "platform",
    "--authfile": "authfile",
    "--registries-conf": "registries_conf",
    "--insecure-registry": "insecure_registry",
    "--policy": "policy",
    "--registries-d": "registries_d",
    "--max-concurrent": "max_concurrent",
    "--progress-timeout": "progress_timeout",
}
#: ``pull``'s flags, and the :class:`PullOptions` field each sets.
PULL_FLAGS = {"--json": "as_json", "--quiet": "quiet", "-q": "quiet"}
_PATHS = frozenset({"authfile", "registries_conf", "policy", "registries_d"})


def _value(field: str, text: str) -> Any:
    """``text`` converted for ``field`` as the typer command does; None if it would not."""
    if not text or text.startswith("-"):
        return None  # typer decides what an empty or dash-led value means
    if field == "max_concurrent":
        try:
            number = int(text)
        except ValueError:
            return None
        return number if number >= 1 else None
    if field == "progress_timeout":
        try:
            return float(text)
        except ValueError:
            return None
    return text


def parse_pull(argv: list[str]) -> dict[str, Any] | None:
    """The fields of :class:`PullOptions` for ``argv`` (``pull`` and its arguments), or
    None when anything in it is not plainly one of ``pull``'s documented options (help,
    another command, an unknown option or value, a wrong number of arguments): typer
    takes those, and words their errors. Paths are still strings."""
    if argv[:1] != ["pull"]:
        return None
    fields: dict[str, Any] = {"insecure_registry": []}
    positional: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, inline = arg.partition("=")
        if name in PULL_FLAGS and not eq:
            fields[PULL_FLAGS[name]] = True
            continue
        field = PULL_VALUE_OPTIONS.get(name)
        if field is None:
            return None  # --help, --, an unknown or a combined short option
        value = _value(field, inline if eq else next(args, ""))
        if value is None:
            return None
        if field == "insecure_registry":
            fields[field].append(value)
        else:
            fields[field] = value
    if len(positional) != 2 or not all(positional):
        return None
    fields["reference"], fields["directory"] = positional
    return fields


def run_fast(argv: list[str]) -> int | None:
    """Run ``ociimage pull`` here: its exit code, or None to leave ``argv`` to typer."""
    fields = parse_pull(argv)
    if fields is None:
        return None
    import gc

    gc.disable()  # importing creates tens of thousands of objects and no garbage
    from pathlib import Path

    from ociimage._pull_command import ConfigExit, registries

    for name in _PATHS:
        if name in fields:
            fields[name] = Path(fields[name])
    fields["directory"] = Path(fields["directory"])
    try:
        # read first (the pull uses it too): where the first request goes depends on it
        conf = registries(fields.get("registries_conf"), fields["insecure_registry"])
    except ConfigExit:
        return 7  # the message is printed, as run_pull prints it
    from ociimage import _prefetch

    _prefetch.start_for(conf, fields["reference"], fields.get("progress_timeout", 60.0))
    # the rest of the pull stack, so that the freeze below covers it
    from ociimage._pull_command import PullOptions, run_pull
    from ociimage.layout import OCILayoutSink  # noqa: F401
    from ociimage.pull import Puller  # noqa: F401

    gc.freeze()  # what the imports made lives as long as the process: never scan it
    gc.enable()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    return run_pull(PullOptions(**fields), registries_conf=conf)


def _exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr, then end the process without the interpreter's teardown."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            if code == 0:
                code = 120  # as the interpreter reports a failed flush at exit
    os._exit(code)


def main() -> None:
    """Entry point of the ``ociimage`` console script."""
    code = run_fast(sys.argv[1:])
    if code is not None:
        _exit_now(code)
    from ociimage.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
