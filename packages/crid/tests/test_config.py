"""crid's configuration: defaults, files and drop-ins, errors that name key and file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import pytest

from crid.config import Config, load_config, parse_duration, render_config
from crid.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_follow_crio_names_and_values() -> None:
    config = Config()
    crid = config.crid
    assert crid.api.listen == "/run/crid/crid.sock"
    assert crid.runtime.default_runtime == "runc"
    assert crid.runtime.cgroup_manager == "cgroupfs"
    assert "runc" in crid.runtime.runtimes
    assert crid.runtime.default_capabilities[:2] == ["CHOWN", "DAC_OVERRIDE"]
    assert crid.network.plugin_dirs == ["/opt/cni/bin", "/usr/lib/cni"]
    assert crid.image.signature_policy == "/etc/containers/policy.json"
    assert crid.metrics.enable_metrics is False


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"crid\.toml: cannot read"):
        load_config(tmp_path / "crid.toml")


def test_file_then_dropins_in_name_order(tmp_path: Path) -> None:
    main = write(
        tmp_path / "crid.toml",
        '[crid]\nroot = "/a"\n[crid.api]\nstream_port = 1000\n[crid.runtime.runtimes.crun]\n'
        'runtime_path = "/usr/bin/crun"\n',
    )
    write(tmp_path / "crid.toml.d" / "20-b.toml", '[crid]\nroot = "/b"\n')
    write(
        tmp_path / "crid.toml.d" / "10-a.toml", '[crid]\nroot = "/ignored"\nlog_level = "debug"\n'
    )
    write(tmp_path / "crid.toml.d" / "notes.txt", "not toml at all [")
    config = load_config(main)
    assert config.crid.root == "/b"
    assert config.crid.log_level == "debug"
    assert config.crid.api.stream_port == 1000
    assert config.crid.api.listen == "/run/crid/crid.sock"  # untouched keys keep defaults
    assert set(config.crid.runtime.runtimes) == {"runc", "crun"}
    assert config.crid.runtime.runtimes["crun"].runtime_path == "/usr/bin/crun"


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", "")
    bad = write(tmp_path / "crid.toml.d" / "50-bad.toml", "[crid.api]\nlisten_port = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert str(bad) in str(info.value)
    assert "unknown key 'crid.api.listen_port'" in str(info.value)


def test_unknown_table_is_an_error(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", "[crio]\nroot = '/x'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'crio'"):
        load_config(main)


def test_wrong_type_names_key_and_file(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", '[crid.api]\nstream_port = "ten"\n')
    with pytest.raises(ConfigError) as info:
        load_config(main)
    message = str(info.value)
    assert str(main) in message
    assert "crid.api.stream_port" in message
    assert "int" in message


def test_out_of_range_and_bad_choice(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", "[crid.api]\nstream_port = 70000\n")
    with pytest.raises(ConfigError, match=r"crid\.api\.stream_port"):
        load_config(main)
    write(main, '[crid.runtime]\ncgroup_manager = "cgroupv3"\n')
    with pytest.raises(ConfigError, match=r"crid\.runtime\.cgroup_manager"):
        load_config(main)


def test_default_runtime_must_be_configured(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", '[crid.runtime]\ndefault_runtime = "kata"\n')
    with pytest.raises(ConfigError, match=r"'kata' is not a configured runtime"):
        load_config(main)


def test_invalid_toml_names_file(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", "[crid\n")
    with pytest.raises(ConfigError, match=r"crid\.toml: not valid TOML"):
        load_config(main)


def test_bad_duration_and_relative_socket(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", '[crid.image]\npull_progress_timeout = "soon"\n')
    with pytest.raises(ConfigError, match=r"pull_progress_timeout.*invalid duration"):
        load_config(main)
    write(main, '[crid.api]\nlisten = "crid.sock"\n')
    with pytest.raises(ConfigError, match=r"crid\.api\.listen.*absolute"):
        load_config(main)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("90s", 90.0), ("1m30s", 90.0), ("250ms", 0.25), ("2h", 7200.0), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "1s ", "-1s", "1m-3s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_rendered_config_is_commented_and_reads_back(tmp_path: Path) -> None:
    main = write(
        tmp_path / "crid.toml",
        '[crid]\nlog_format = "json"\n[crid.runtime.runtimes."my runtime"]\n'
        'runtime_path = "/opt/x"\n[crid.network]\nplugin_dirs = ["/a", "/b \\"q\\""]\n',
    )
    config = load_config(main)
    text = render_config(config)
    assert "# Path of the unix socket the CRI gRPC server listens on." in text
    assert '[crid.runtime.runtimes."my runtime"]' in text
    assert msgspec.convert(tomllib.loads(text), Config) == config
    again = write(tmp_path / "again" / "crid.toml", text)
    assert load_config(again) == config


def test_documented_defaults_match_the_code(repo_root: Path) -> None:
    text = (repo_root / "docs" / "configuration.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == render_config(Config()), "docs/configuration.md: paste `crid config` again"


def test_stream_settings_are_checked_at_load(tmp_path: Path) -> None:
    main = write(tmp_path / "crid.toml", '[crid.api]\nstream_token_ttl = "forever"\n')
    with pytest.raises(ConfigError, match=r"crid\.api\.stream_token_ttl.*invalid duration"):
        load_config(main)
    write(main, '[crid.api]\nstream_tls_cert = "/etc/crid/stream.crt"\n')
    with pytest.raises(ConfigError, match=r"must be set together"):
        load_config(main)
