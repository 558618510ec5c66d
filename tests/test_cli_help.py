"""Every command of every CLI (ociimage, crid) prints its help, with its texts verbatim.

The command tree is walked from the typer applications, so a command added later is
covered without touching this file. Help texts are plain text: brackets such as
``os/arch[/variant]`` must come out as written, never be read as rich markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

import crid.cli
import ociimage.cli

APPS: dict[str, typer.Typer] = {"ociimage": ociimage.cli.app, "crid": crid.cli.app}


def _walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


def _cases() -> list[tuple[str, tuple[str, ...]]]:
    return [
        (app_name, path)
        for app_name, app in APPS.items()
        for path, _command in _walk(get_command(app), ())
    ]


def _flat(text: str) -> str:
    """``text`` without whitespace: help is wrapped (and words hyphen-split) to fit."""
    return re.sub(r"\s+", "", text)


def test_the_tree_walk_finds_the_nested_commands() -> None:
    paths = {(name, path) for name, path in _cases()}
    assert ("ociimage", ("policy", "check")) in paths
    assert ("ociimage", ("pull",)) in paths
    assert ("crid", ("serve",)) in paths


@pytest.mark.parametrize(
    ("app_name", "path"), _cases(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_help_of_every_command(app_name: str, path: tuple[str, ...]) -> None:
    app = APPS[app_name]
    command: object = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (result.output, result.exception)
    shown = _flat(result.output)
    assert "Usage:" in result.output
    texts = [getattr(command, "help", None)]
    texts += [getattr(p, "help", None) for p in command.params]  # type: ignore[attr-defined]
    for text in filter(None, texts):
        assert _flat(text) in shown, f"{app_name} {' '.join(path)}: {text!r} not shown verbatim"


def test_brackets_in_help_are_shown_as_written() -> None:
    result = CliRunner().invoke(ociimage.cli.app, ["pull", "--help"])
    assert result.exit_code == 0, result.output
    assert "os/arch[/variant]" in result.output
