"""Reading a node's CRI-O configuration into crid's: ``crid config --from-crio``.

crid's tables and keys follow ``crio.conf``, so most of a CRI-O file carries over by
renaming ``[crio...]`` to ``[crid...]``. What differs is converted (``log_level`` lives
in ``[crio.runtime]``; ``pause_command`` is one string; ``warn`` is ``warning``); what
crid has no key for, or keeps for itself (``root`` and ``runroot``: crid's store is its
own format; the socket and the clean-shutdown marker too), is left out and reported,
never silently dropped.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec

from crid.config.loader import _merge
from crid.config.model import (
    ApiConfig,
    Config,
    CridConfig,
    ImageConfig,
    MetricsConfig,
    NetworkConfig,
    RuntimeConfig,
    RuntimeHandler,
)
from crid.errors import ConfigError

__all__ = ["convert_crio", "read_crio"]

_TABLES: dict[str, type[msgspec.Struct]] = {
    "api": ApiConfig,
    "runtime": RuntimeConfig,
    "image": ImageConfig,
    "network": NetworkConfig,
    "metrics": MetricsConfig,
}
# crid's store, run directory, marker and socket are its own, never CRI-O's.
_OWN = {"root", "runroot", "clean_shutdown_file"}
_OWN_API = {"listen"}
_LOG_LEVELS = {
    "trace": "debug",
    "debug": "debug",
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "error": "error",
    "fatal": "error",
    "panic": "error",
}


def _fields(kind: type[msgspec.Struct]) -> set[str]:
    return set(kind.__struct_fields__)


def read_crio(path: Path) -> dict[str, Any]:
    """``path`` merged with its drop-ins (``<path>.d/*.conf``, name order), as CRI-O does."""
    files = [path]
    drop_ins = path.with_name(path.name + ".d")
    if drop_ins.is_dir():
        files += sorted(drop_ins.glob("*.conf"))
    merged: dict[str, Any] = {}
    for file in files:
        try:
            with file.open("rb") as handle:
                merged = _merge(merged, tomllib.load(handle))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"{file}: {err}") from err
    return merged


def _handlers(runtimes: dict[str, Any], left_out: list[str]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    known = _fields(RuntimeHandler)
    for name, handler in runtimes.items():
        entry = {}
        for key, value in handler.items():
            if key in known and (key != "runtime_type" or value == "oci"):
                entry[key] = value
            else:
                left_out.append(f"crio.runtime.runtimes.{name}.{key}")
        converted[name] = entry
    return converted


def convert_crio(crio: dict[str, Any]) -> tuple[Config, list[str]]:
    """crid's configuration from a CRI-O document, and the CRI-O keys left out."""
    left_out: list[str] = []
    table = crio.get("crio", {})
    crid: dict[str, Any] = {}
    top_keys = _fields(CridConfig) - set(_TABLES) - _OWN
    for key, value in table.items():
        if key in _TABLES and isinstance(value, dict):
            known = _fields(_TABLES[key])
            section: dict[str, Any] = {}
            for sub, sub_value in value.items():
                if key == "runtime" and sub == "log_level" and sub_value in _LOG_LEVELS:
                    crid["log_level"] = _LOG_LEVELS[sub_value]
                elif key == "runtime" and sub == "runtimes" and isinstance(sub_value, dict):
                    section["runtimes"] = _handlers(sub_value, left_out)
                elif key == "image" and sub == "pause_command" and isinstance(sub_value, str):
                    section["pause_command"] = [sub_value] if sub_value else []
                elif key == "runtime" and sub == "conmon_cgroup" and not sub_value:
                    left_out.append("crio.runtime.conmon_cgroup")
                elif key == "api" and sub == "stream_port" and isinstance(sub_value, str):
                    section[sub] = int(sub_value) if sub_value.isdigit() else sub_value
                elif key == "api" and sub in _OWN_API:
                    left_out.append(f"crio.{key}.{sub}")
                elif sub in known:
                    section[sub] = sub_value
                else:
                    left_out.append(f"crio.{key}.{sub}")
            crid[key] = section
        elif key in top_keys:
            crid[key] = value
        else:
            left_out.append(f"crio.{key}")
    left_out.extend(f"{name}" for name in crio if name != "crio")
    try:
        config = msgspec.convert({"crid": crid}, Config)
    except msgspec.ValidationError as err:
        raise ConfigError(f"the CRI-O configuration does not carry over: {err}") from err
    runtime = config.crid.runtime
    if runtime.default_runtime not in runtime.runtimes:
        raise ConfigError(
            f"crio.runtime.default_runtime {runtime.default_runtime!r} names no runtime in"
            " [crio.runtime.runtimes]"
        )
    return config, sorted(left_out)
