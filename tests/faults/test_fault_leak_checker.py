"""The leak checker sees each kind of leak it claims to (else the fault tests prove nothing)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from crid.cgroups import Hierarchies

from ._leaks import Scope, leaks, snapshot

pytestmark = [pytest.mark.root]


def test_fault_leak_checker_sees_files_mounts_cgroups_processes_leases(tmp_path: Path) -> None:
    scope = Scope(
        root=tmp_path / "root",
        runroot=tmp_path / "run",
        network="crid-leak-check",
        bridge="crid-nobridge",
        ipam_dir=tmp_path / "ipam",
        cgroup_parent=f"crid-leak-{tmp_path.name[-12:]}",
    )
    for directory in (scope.root, scope.runroot, scope.ipam_dir / scope.network):
        directory.mkdir(parents=True)
    before = snapshot(scope)
    assert leaks(before, snapshot(scope)) == {}

    bundle = scope.runroot / "containers" / ("ab" * 32)
    bundle.mkdir(parents=True)
    (scope.root / "state.db-wal").write_text("volatile")  # not a leak
    target = scope.runroot / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)
    (scope.ipam_dir / scope.network / "10.1.2.3").write_text("id\neth0")
    hierarchies = Hierarchies.detect()
    hierarchies.create(f"{scope.cgroup_parent}/pod-x")
    sleeper = subprocess.Popen(["sh", "-c", "sleep 30; true", str(scope.runroot)])
    try:
        found = leaks(before, snapshot(scope))
    finally:
        sleeper.kill()
        sleeper.wait()
        subprocess.run(["umount", str(target)], check=True)
        hierarchies.remove(scope.cgroup_parent)
    assert found["files"] == sorted([str(bundle), f"{target}/ (mounted)"])
    assert found["mounts"] == [f"tmpfs {target}"]
    assert found["leases"] == ["10.1.2.3 id\neth0"]
    assert any(item.endswith("/pod-x") for item in found["cgroups"])
    commands = sorted(p.split(" ", 1)[1] for p in found["processes"])
    assert f"sh -c sleep 30; true {scope.runroot}" in commands
