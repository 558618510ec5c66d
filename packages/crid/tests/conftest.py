"""Fixtures for crid's own tests: a configuration rooted in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from crid.config import Config, load_config


def make_config(
    tmp_path: Path, extra: str = "", network: str = "", nri: str = ""
) -> tuple[Path, Config]:
    """A config file whose every path lies under ``tmp_path``; returns (file, config).

    ``network`` adds lines to ``[crid.network]``, ``nri`` to ``[crid.nri]`` (whose socket
    and plugin directories lie under ``tmp_path`` too); ``extra`` adds whole tables.
    """
    net = tmp_path / "net.d"
    net.mkdir(exist_ok=True)
    text = (
        f'[crid]\nroot = "{tmp_path}/root"\nrunroot = "{tmp_path}/run"\n'
        f'[crid.api]\nlisten = "{tmp_path}/run/crid.sock"\n'
        f'[crid.network]\nnetwork_dir = "{net}"\n{network}'
        f'[crid.nri]\nsocket_path = "{tmp_path}/nri/nri.sock"\n'
        f'plugin_dir = "{tmp_path}/nri/plugins"\nplugin_config_dir = "{tmp_path}/nri/conf.d"\n'
        f"{nri}" + extra
    )
    path = tmp_path / "crid.toml"
    path.write_text(text)
    return path, load_config(path)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return make_config(tmp_path)[0]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)[1]
