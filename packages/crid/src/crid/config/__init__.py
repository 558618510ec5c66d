"""crid's configuration: a typed model, the TOML loader, and the commented printer."""

from __future__ import annotations

from crid.config.loader import DEFAULT_CONFIG_PATH, config_files, load_config, parse_duration
from crid.config.model import (
    POD_METRIC_GROUPS,
    ApiConfig,
    Config,
    CridConfig,
    ImageConfig,
    MetricsConfig,
    NetworkConfig,
    NRIConfig,
    RuntimeConfig,
    RuntimeHandler,
    StatsConfig,
)
from crid.config.render import render_config

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "POD_METRIC_GROUPS",
    "ApiConfig",
    "Config",
    "CridConfig",
    "ImageConfig",
    "MetricsConfig",
    "NRIConfig",
    "NetworkConfig",
    "RuntimeConfig",
    "RuntimeHandler",
    "StatsConfig",
    "config_files",
    "load_config",
    "parse_duration",
    "render_config",
]
