"""crid's systemd client against a real systemd (PID 1 of private namespaces).

Select these with ``pytest -k systemd``. The manager is real; the scopes, slices and
cgroup files it makes are checked where the kernel keeps them.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.cgroups.systemd import escape_unit_path

from ._systemd_support import SYSTEMD, SystemdNamespace, systemd_namespace

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries(SYSTEMD, "dbus-daemon", "busctl", "systemd-run", "nsenter", "unshare"),
]

# Run inside the manager as a service: a scope for a sleeping process, in a kubelet-style
# pod slice, with resource properties; then a change through SetUnitProperties; then a stop.
_PROGRAM = """
import json, subprocess, sys
from pathlib import Path
from crid.cgroups.systemd import Systemd

def read(controller, group, name):
    return int(Path(f"/sys/fs/cgroup/{controller}{group}/{name}").read_text())

scope, slice_ = sys.argv[1], sys.argv[2]
seen = {}
sleeper = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    with Systemd() as systemd:
        systemd.start_scope(
            scope, [sleeper.pid], [("MemoryLimit", ("t", 64 << 20)), ("CPUShares", ("t", 512))],
            slice_=slice_,
        )
        seen["state"] = systemd.active_state(scope)
        group = systemd.property(scope, "org.freedesktop.systemd1.Scope", "ControlGroup")
        seen["control_group"] = group
        procs = Path(f"/sys/fs/cgroup/memory{group}/cgroup.procs").read_text().split()
        seen["in_scope"] = str(sleeper.pid) in procs
        seen["started"] = [read("memory", group, "memory.limit_in_bytes"),
                           read("cpu", group, "cpu.shares")]
        systemd.set_properties(scope, [("MemoryLimit", ("t", 32 << 20)), ("CPUShares", ("t", 256))])
        seen["updated"] = [read("memory", group, "memory.limit_in_bytes"),
                           read("cpu", group, "cpu.shares")]
        systemd.stop(scope)
        seen["exit"] = sleeper.wait(timeout=30)
        systemd.stop(scope)  # gone already: fine
finally:
    sleeper.kill()
print(json.dumps(seen))
"""


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[SystemdNamespace]:
    with systemd_namespace(tmp_path) as ns:
        yield ns


def test_systemd_namespace_starts_and_stops_cleanly(tmp_path: Path) -> None:
    with systemd_namespace(tmp_path) as ns:
        active = subprocess.run(
            [*ns.nsenter(), "systemctl", "is-active", "crid-test.target", "dbus.service"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert active.stdout.split() == ["active", "active"], ns.log.read_text()
        # systemd manages the cgroups below its own, never the host's root.
        assert (ns.cgroup_dir("systemd") / "init.scope").is_dir()
        assert not Path("/run/systemd/system").exists()
        pid = ns.pid
    assert not Path(f"/proc/{pid}").exists()
    assert not ns.cgroup_dir("systemd").exists()
    assert not ns.cgroup_dir("memory").exists()


def test_systemd_unit_paths_are_escaped() -> None:
    assert escape_unit_path("crid-ab.scope") == "/org/freedesktop/systemd1/unit/crid_2dab_2escope"


def test_systemd_transient_scope_with_resources(systemd: SystemdNamespace) -> None:
    token = secrets.token_hex(4)
    scope, slice_ = f"crid-{token}.scope", f"kubepods-besteffort-pod{token}.slice"
    done = systemd.run_service([sys.executable, "-c", _PROGRAM, scope, slice_])
    assert done.returncode == 0, done.stderr + systemd.log.read_text()[-2000:]
    seen = json.loads(done.stdout)
    place = f"/kubepods.slice/kubepods-besteffort.slice/{slice_}/{scope}"
    assert seen["state"] == "active"
    assert seen["control_group"] == place  # the slice's parents were made on the way
    assert seen["in_scope"]
    assert seen["started"] == [64 << 20, 512]  # StartTransientUnit's resource properties
    assert seen["updated"] == [32 << 20, 256]  # SetUnitProperties reached the cgroup files
    assert seen["exit"] == -15  # stopping the scope killed its process (SIGTERM)
    memory = systemd.cgroup_dir("memory") / place.lstrip("/")
    assert not memory.exists()  # the stopped scope's cgroup is gone
