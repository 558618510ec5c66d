"""A real systemd as PID 1 of private PID, mount and cgroup namespaces, for the tests of
crid's systemd parts (their names contain ``systemd``: ``pytest -k systemd``).

Nothing leaks to the host: the manager runs as a container's init (``container=``, its
own UTS namespace) below a cgroup of its own in every hierarchy (its cgroup namespace
makes that its root), on private mounts of the
cgroup hierarchies, ``/run``, ``/var/lib/systemd`` and ``/etc/systemd/system``; it
starts only ``crid-test.target`` (a system bus and nothing else), with the boot units
that act on the whole machine (tmpfiles, udev, sysctl, journald, the host's services)
masked. Stopping it kills the namespace's PID 1 and removes its cgroups.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SYSTEMD = "/lib/systemd/systemd"

_TARGET = """[Unit]
Description=crid test: systemd with a system bus and nothing else
DefaultDependencies=no
Wants=dbus.socket dbus.service
"""
_BUS_SOCKET = """[Unit]
Description=crid test system bus socket
DefaultDependencies=no

[Socket]
ListenStream=/run/dbus/system_bus_socket
"""
_BUS_SERVICE = """[Unit]
Description=crid test system bus
DefaultDependencies=no
Requires=dbus.socket

[Service]
ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation
"""
_MASKED = (
    "systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service"
    " systemd-tmpfiles-clean.timer systemd-udevd.service systemd-udev-trigger.service"
    " systemd-sysctl.service systemd-modules-load.service systemd-timesyncd.service"
    " systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket"
    " systemd-journal-flush.service systemd-random-seed.service systemd-remount-fs.service"
    " systemd-logind.service getty@tty1.service console-getty.service"
    " postgresql.service docker-registry.service sysinit.target basic.target"
)
# Runs inside the new namespaces, then becomes systemd.
_INNER = f"""#!/bin/sh
set -e
units="$1"
mount --make-rprivate /
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in $(cat "$units/controllers"); do
  mkdir /sys/fs/cgroup/$c
  mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
mkdir /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mkdir /sys/fs/cgroup/unified
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
mount -t tmpfs tmpfs /etc/systemd/system
cp "$units"/*.target "$units"/*.socket "$units"/*.service /etc/systemd/system/
for u in {_MASKED}; do ln -sf /dev/null /etc/systemd/system/$u; done
mount -t tmpfs tmpfs /var/lib/systemd
# As systemd-nspawn tells it: a container, so none of the machine-wide boot set-up
# (kernel modules, clock, file limits) is done.
export container=crid-test
exec {SYSTEMD} --system --unit=crid-test.target --log-target=console --show-status=no
"""
# Runs on the host: joins the manager's own cgroups, then unshares.
_OUTER = """#!/bin/sh
set -e
for h in $(cat "$1/hierarchies"); do
  mkdir -p "$h/$2"
  if [ -e "$h/cpuset.cpus" ]; then
    cat "$h/cpuset.cpus" > "$h/$2/cpuset.cpus"
    cat "$h/cpuset.mems" > "$h/$2/cpuset.mems"
  fi
  echo $$ > "$h/$2/cgroup.procs"
done
exec unshare --pid --fork --mount --mount-proc --cgroup --uts --propagation private \\
  sh "$1/inner.sh" "$1"
"""

_V1 = ("blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids")


@dataclass
class SystemdNamespace:
    """A running manager: its host pid and the host path of its cgroups."""

    pid: int
    name: str
    log: Path

    def cgroup_dir(self, controller: str) -> Path:
        """Where the manager's root cgroup of ``controller`` is on the host."""
        return Path("/sys/fs/cgroup") / controller / self.name

    def nsenter(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "-C", "--"]

    def run_service(
        self, argv: list[str], *, properties: tuple[str, ...] = (), timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as a transient service of this manager (``systemd-run --wait
        --pipe``), as a daemon runs under its unit; its output comes back."""
        unit = f"crid-test-{secrets.token_hex(4)}"
        command = ["systemd-run", "--quiet", "--wait", "--pipe", f"--unit={unit}"]
        # sysinit.target is masked (it would act on the whole machine), so no default deps.
        command += ["--property=DefaultDependencies=no"]
        command += [f"--property={p}" for p in properties]
        command += [f"--setenv=PATH={os.environ['PATH']}", "--", *argv]
        return subprocess.run(
            [*self.nsenter(), *command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip


def _hierarchies() -> list[Path]:
    roots = [Path("/sys/fs/cgroup") / c for c in _V1 if (Path("/sys/fs/cgroup") / c).is_dir()]
    roots += [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
    return [root for root in roots if (root / "cgroup.procs").exists()]


def _manager_pid(unshare_pid: int, deadline: float) -> int:
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
        with contextlib.suppress(OSError):
            for child in children.read_text().split():
                if Path(f"/proc/{child}/exe").resolve() == Path(SYSTEMD).resolve():
                    return int(child)
        time.sleep(0.05)
    raise AssertionError("systemd did not start in its namespace")


def _bus_ready(ns: SystemdNamespace) -> bool:
    done = subprocess.run(
        [*ns.nsenter(), "busctl", "--system", "status", "org.freedesktop.systemd1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode == 0 and "PID=1" in done.stdout


def _remove_tree(root: Path, deadline: float) -> None:
    if not root.is_dir():
        return
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        _rmdir(path, deadline)
    _rmdir(root, deadline)


def _rmdir(path: Path, deadline: float) -> None:
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def systemd_namespace(workdir: Path) -> Iterator[SystemdNamespace]:
    """Start systemd in its namespaces; yield once its manager answers on the bus."""
    name = f"crid-systemd-{secrets.token_hex(4)}"
    hierarchies = _hierarchies()
    controllers = [h.name for h in hierarchies if h.name in _V1]
    (workdir / "hierarchies").write_text("\n".join(map(str, hierarchies)) + "\n")
    (workdir / "controllers").write_text("\n".join(controllers) + "\n")
    (workdir / "crid-test.target").write_text(_TARGET)
    (workdir / "dbus.socket").write_text(_BUS_SOCKET)
    (workdir / "dbus.service").write_text(_BUS_SERVICE)
    (workdir / "inner.sh").write_text(_INNER)
    (workdir / "outer.sh").write_text(_OUTER)
    log = workdir / "systemd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["sh", str(workdir / "outer.sh"), str(workdir), name],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    manager = 0
    try:
        deadline = time.monotonic() + 60
        manager = _manager_pid(proc.pid, deadline)
        ns = SystemdNamespace(pid=manager, name=name, log=log)
        while not _bus_ready(ns):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"systemd never took the bus:\n{log.read_text()}"
            time.sleep(0.1)
        yield ns
    finally:
        # Killing the namespace's PID 1 kills every process in it; unshare, its parent,
        # reaps it and exits.
        if manager:
            with contextlib.suppress(ProcessLookupError):
                os.kill(manager, signal.SIGKILL)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        for hierarchy in hierarchies:
            _remove_tree(hierarchy / name, deadline)
