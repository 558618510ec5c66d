"""Applying an image config to a container: command and args, environment, working dir, signals."""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping, Sequence

from ocispec.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_PATH",
    "merge_env",
    "parse_signal",
    "resolve_command",
]

#: The PATH a container gets when neither the image nor the caller sets one.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def resolve_command(
    *,
    command: Sequence[str] = (),
    args: Sequence[str] = (),
    image_entrypoint: Sequence[str] = (),
    image_cmd: Sequence[str] = (),
) -> tuple[str, ...]:
    """The process arguments by the Kubernetes rules.

    ======================  =================  ====================================
    command                 args               runs
    ======================  =================  ====================================
    not given               not given          image Entrypoint + image Cmd
    not given               given              image Entrypoint + args
    given                   not given          command (image Cmd is ignored)
    given                   given              command + args
    ======================  =================  ====================================

    Raises :class:`InvalidArgumentError` when the result is empty.
    """
    argv = [*command, *args] if command else [*image_entrypoint, *(args or image_cmd)]
    if not argv:
        raise InvalidArgumentError(
            "no command specified: neither the container nor the image has one"
        )
    return tuple(argv)


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not key:
        raise InvalidArgumentError(f"invalid environment variable {item!r}: empty name")
    return key, value if sep else ""


def merge_env(
    image_env: Iterable[str] = (),
    env: Mapping[str, str] | Iterable[str] = (),
    *,
    defaults: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The environment: image variables, overridden by explicit ones, plus defaults.

    Order is kept (image first, then new explicit variables); an explicit variable
    replaces the image's value in place. ``defaults`` (``PATH`` unless told otherwise)
    are appended only for names still missing.
    """
    merged: dict[str, str] = {}
    for item in image_env:
        k, v = _split(item)
        merged[k] = v
    items = env.items() if isinstance(env, Mapping) else (_split(e) for e in env)
    for k, v in items:
        if not k:
            raise InvalidArgumentError("invalid environment variable: empty name")
        merged[k] = v
    for k, v in (defaults if defaults is not None else {"PATH": DEFAULT_PATH}).items():
        merged.setdefault(k, v)
    return tuple(f"{k}={v}" for k, v in merged.items())


def parse_signal(name: str | int) -> int:
    """A signal number from ``SIGTERM``, ``TERM``, ``15`` or ``SIGRTMIN+3``."""
    if isinstance(name, int):
        return name
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = f"SIG{text}"
    for prefix, base in (("SIGRTMIN", signal.SIGRTMIN), ("SIGRTMAX", signal.SIGRTMAX)):
        if text.startswith(prefix) and text != prefix:
            rest = text[len(prefix) :]
            try:
                return int(base) + int(rest)
            except ValueError:
                break
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise InvalidArgumentError(f"unknown signal {name!r}") from None
