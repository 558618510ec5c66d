"""Reading crid's TOML configuration: the main file, then drop-ins in name order.

Each file is checked on its own first, so an unknown key or a wrong type is reported
with the file it came from; then the files are deep-merged over the defaults (later
files win key by key) and checked once more as a whole.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from crid.config.model import Config
from crid.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_PATH", "load_config", "parse_duration"]

DEFAULT_CONFIG_PATH = Path("/etc/crid/crid.toml")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")


#: Timeouts of helper binaries: a run must be given some time, so 0s is refused.
_POSITIVE = frozenset(
    {"crid.runtime.runtime_timeout", "crid.runtime.create_timeout", "crid.network.plugin_timeout"}
)


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``90s``, ``1m30s`` or ``250ms``."""
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {text!r} (expected e.g. '90s', '1m30s', '500ms')")
    return total


def _describe(err: msgspec.ValidationError) -> str:
    """Rewrite msgspec's message so it names the TOML key, not a JSON path."""
    message = str(err)
    at = _AT.search(message)
    path = at.group("path") if at else ""
    message = message[: at.start()] if at else message
    unknown = _UNKNOWN.match(message)
    if unknown:
        key = f"{path}.{unknown.group('field')}" if path else unknown.group("field")
        return f"unknown key '{key}'"
    return f"key '{path}': {message}" if path else message


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    try:
        msgspec.convert(data, Config)
    except msgspec.ValidationError as err:
        raise ConfigError(f"{path}: {_describe(err)}") from err
    return data


def _check(config: Config, sources: str) -> None:
    runtime = config.crid.runtime
    if runtime.default_runtime not in runtime.runtimes:
        raise ConfigError(
            f"{sources}: key 'crid.runtime.default_runtime': {runtime.default_runtime!r} is not"
            f" a configured runtime (have: {', '.join(sorted(runtime.runtimes))})"
        )
    durations = {
        "crid.image.pull_progress_timeout": config.crid.image.pull_progress_timeout,
        "crid.api.stream_idle_timeout": config.crid.api.stream_idle_timeout,
        "crid.api.stream_token_ttl": config.crid.api.stream_token_ttl,
        "crid.api.shutdown_grace": config.crid.api.shutdown_grace,
        "crid.runtime.runtime_timeout": config.crid.runtime.runtime_timeout,
        "crid.runtime.create_timeout": config.crid.runtime.create_timeout,
        "crid.network.plugin_timeout": config.crid.network.plugin_timeout,
        "crid.stats.metrics_collection_period": config.crid.stats.metrics_collection_period,
        "crid.nri.plugin_registration_timeout": config.crid.nri.plugin_registration_timeout,
        "crid.nri.plugin_request_timeout": config.crid.nri.plugin_request_timeout,
    }
    for key, value in durations.items():
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            raise ConfigError(f"{sources}: key '{key}': {err}") from err
        if key in _POSITIVE and seconds <= 0:
            raise ConfigError(f"{sources}: key '{key}': must be longer than 0s")
    api = config.crid.api
    if bool(api.stream_tls_cert) != bool(api.stream_tls_key):
        raise ConfigError(
            f"{sources}: keys 'crid.api.stream_tls_cert' and 'crid.api.stream_tls_key'"
            " must be set together"
        )
    if not config.crid.api.listen.startswith("/"):
        raise ConfigError(f"{sources}: key 'crid.api.listen': must be an absolute socket path")


def config_files(path: Path | None) -> list[Path]:
    """The files that make up the configuration, in the order they apply.

    An explicitly given ``path`` must exist; the default one may be absent. Drop-ins
    come from ``<file>.d/*.toml`` beside the main file.
    """
    main = path if path is not None else DEFAULT_CONFIG_PATH
    files: list[Path] = []
    if main.exists() or path is not None:
        files.append(main)
    dropins = main.with_name(main.name + ".d")
    if dropins.is_dir():
        files.extend(sorted(dropins.glob("*.toml")))
    return files


def load_config(path: Path | None = None) -> Config:
    """Load the effective configuration: defaults, the main file, then its drop-ins."""
    files = config_files(path)
    merged: dict[str, Any] = msgspec.to_builtins(Config())
    for file in files:
        merged = _merge(merged, _read(file))
    sources = ", ".join(str(f) for f in files) or "defaults"
    try:
        config = msgspec.convert(merged, Config)
    except msgspec.ValidationError as err:
        raise ConfigError(f"{sources}: {_describe(err)}") from err
    _check(config, sources)
    return config
