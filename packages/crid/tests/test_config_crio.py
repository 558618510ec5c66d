"""``crid config --from-crio``: a node's CRI-O configuration carried over to crid's."""

from __future__ import annotations

from pathlib import Path

from crid.config import load_config

from ._node_support import crid

CRIO_CONF = """
[crio]
root = "/var/lib/containers/storage"
runroot = "/run/containers/storage"
storage_driver = "overlay"
log_dir = "/var/log/pods-elsewhere"
clean_shutdown_file = "/var/lib/crio/clean.shutdown"
version_file = "/var/run/crio/version"

[crio.api]
listen = "/var/run/crio/crio.sock"
stream_port = "10010"

[crio.runtime]
log_level = "warn"
default_runtime = "crun"
cgroup_manager = "systemd"
conmon_cgroup = "system.slice"
selinux = false
default_capabilities = ["CHOWN", "KILL"]

[crio.runtime.runtimes.crun]
runtime_path = "/usr/bin/crun"
runtime_type = "oci"
monitor_path = "/usr/libexec/crio/conmon"

[crio.image]
pause_image = "registry.k8s.io/pause:3.9"
pause_command = "/pause"
insecure_registries = []

[crio.network]
plugin_dirs = ["/opt/cni/bin/"]

[crio.metrics]
enable_metrics = true
metrics_port = 9537
"""


def test_a_crio_configuration_carries_over(tmp_path: Path) -> None:
    crio = tmp_path / "crio.conf"
    crio.write_text(CRIO_CONF)
    (tmp_path / "crio.conf.d").mkdir()
    (tmp_path / "crio.conf.d" / "10-pause.conf").write_text(
        '[crio.image]\npause_image = "registry.k8s.io/pause:3.10"\n'
    )
    done = crid("config", "--from-crio", str(crio))
    assert done.returncode == 0, done.stderr
    converted = tmp_path / "crid.toml"
    converted.write_text(done.stdout)
    config = load_config(converted).crid
    assert (config.log_level, config.log_dir, config.storage_driver) == (
        "warning", "/var/log/pods-elsewhere", "overlay",
    )  # fmt: skip
    # crid's own store, run directory, socket and marker, never CRI-O's
    assert (config.root, config.runroot, config.api.listen) == (
        "/var/lib/crid", "/run/crid", "/run/crid/crid.sock",
    )  # fmt: skip
    assert config.clean_shutdown_file == ""
    assert config.api.stream_port == 10010
    assert config.runtime.default_runtime == "crun"
    assert config.runtime.runtimes["crun"].runtime_path == "/usr/bin/crun"
    assert (config.runtime.cgroup_manager, config.runtime.conmon_cgroup) == (
        "systemd", "system.slice",
    )  # fmt: skip
    assert config.runtime.default_capabilities == ["CHOWN", "KILL"]
    assert config.image.pause_image == "registry.k8s.io/pause:3.10"  # the drop-in won
    assert config.image.pause_command == ["/pause"]
    assert config.network.plugin_dirs == ["/opt/cni/bin/"]
    assert (config.metrics.enable_metrics, config.metrics.metrics_port) == (True, 9537)
    left_out = sorted(
        line.split()[3].rstrip(":") for line in done.stderr.splitlines() if "left out" in line
    )
    assert left_out == [
        "crio.api.listen",
        "crio.clean_shutdown_file",
        "crio.image.insecure_registries",
        "crio.root",
        "crio.runroot",
        "crio.runtime.runtimes.crun.monitor_path",
        "crio.runtime.selinux",
        "crio.version_file",
    ]


def test_a_crio_configuration_that_cannot_carry_over_exits_2(tmp_path: Path) -> None:
    crio = tmp_path / "crio.conf"
    crio.write_text('[crio.runtime]\ndefault_runtime = "kata"\n')
    done = crid("config", "--from-crio", str(crio))
    assert done.returncode == 2
    assert "'kata'" in done.stderr and done.stdout == ""
    crio.write_text("[crio\n")
    done = crid("config", "--from-crio", str(crio))
    assert done.returncode == 2
    assert str(crio) in done.stderr
