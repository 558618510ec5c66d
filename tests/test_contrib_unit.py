"""contrib/systemd/crid.service: systemd accepts it and it keeps what a runtime needs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest


def _unit(repo_root: Path) -> Path:
    return repo_root / "contrib" / "systemd" / "crid.service"


def test_unit_has_the_runtime_settings(repo_root: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(_unit(repo_root))
    service = parser["Service"]
    assert service["Type"] == "notify"
    assert service["KillMode"] == "process"
    assert service["Delegate"] == "yes"
    assert service["TasksMax"] == "infinity"
    assert service["LimitNOFILE"] == "1048576"
    assert service["ExecStart"].split()[1] == "serve"
    assert "kubelet.service" in parser["Unit"]["Before"]


@pytest.mark.binaries("systemd-analyze")
def test_systemd_analyze_accepts_the_unit(repo_root: Path, tmp_path: Path) -> None:
    crid = shutil.which("crid")
    assert crid is not None, "the crid console script is installed in the venv"
    unit = tmp_path / "crid.service"
    unit.write_text(_unit(repo_root).read_text().replace("/usr/local/bin/crid", crid))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
