"""Heavy libraries stay out of an idle crid: they load at their first use, not at start.

Each check runs in a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from ocistore.testing import compress

# Loaded at first use: metrics (only with enable_metrics) and schema validation (the first
# CreateContainer). ~20 MiB of an idle daemon's RSS between them. The streaming server's
# HTTP and WebSocket libraries load at its first connection (~2 MiB).
LAZY = (
    "prometheus_client",
    "jsonschema",
    "referencing",
    "httpx",
    "cryptography",
    "yaml",
    "h11",
    "wsproto",
)


# Loaded at first use by the daemon itself: the stats sampler, cgroup detail readers and
# pod metrics (the first stats or metrics RPC), jeepney (the first systemd D-Bus call,
# only with the systemd cgroup driver), argparse (never: ``crid serve`` parses by hand),
# ocistore's unpacker with gzip (the first layer unpacked; zstandard with the first zstd
# layer), the NRI protocol
# and host (the first NRI plugin: NRI is on by default, plugins are rare).
DAEMON_LAZY = (
    "crid._nri.v1alpha1.api_pb2",
    "crid.nri.host",
    "crid.nri.domain",
    "crid.nri.ttrpc",
    "crid.nri.stub",
    "crid.stats.sampler",
    "crid.stats.collector",
    "crid.stats.pod_metrics",
    "crid.stats.descriptors",
    "crid.services._metrics_messages",
    "crid.cgroups.details",
    "jeepney",
    "argparse",
    "ocistore.unpack",
    "zstandard",
    "gzip",
)


def loaded_after(code: str, watched: tuple[str, ...] = LAZY) -> set[str]:
    """The modules of ``watched`` that running ``code`` in a new interpreter loads."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(set(sys.modules))))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(result.stdout.splitlines()[-1]))
    return {name for name in watched if name in modules}


def test_importing_the_daemon_loads_no_metrics_or_schema_library() -> None:
    assert loaded_after("import crid.server, crid.cli") == set()


def test_the_daemon_loads_stats_metrics_and_dbus_code_at_first_use() -> None:
    assert loaded_after("import crid.server, crid.entry", DAEMON_LAZY) == set()
    # What the first ListContainerStats and ListPodSandboxMetrics import.
    stats = "from crid.stats.sampler import StatsSampler"
    assert loaded_after(stats, DAEMON_LAZY) == {
        "crid.stats.sampler",
        "crid.stats.collector",
        "crid.stats.descriptors",
        "crid.cgroups.details",
    }
    metrics = "import crid.services._metrics_messages"
    assert loaded_after(metrics, DAEMON_LAZY) >= {
        "crid.services._metrics_messages",
        "crid.stats.pod_metrics",
    }
    dbus = (
        "from crid.cgroups import systemd_driver\n"
        "try:\n    systemd_driver.probe_systemd()\nexcept Exception:\n    pass"
    )
    assert loaded_after(dbus, DAEMON_LAZY) == {"jeepney"}
    assert loaded_after("from crid.cgroups import read_details", DAEMON_LAZY) == {
        "crid.cgroups.details"
    }
    nri = {"crid._nri.v1alpha1.api_pb2", "crid.nri.host", "crid.nri.domain", "crid.nri.ttrpc"}
    assert loaded_after("import crid.nri.domain", DAEMON_LAZY) == nri
    assert loaded_after("from crid.nri import Stub", DAEMON_LAZY) == {
        "crid._nri.v1alpha1.api_pb2",
        "crid.nri.ttrpc",
        "crid.nri.stub",
    }
    assert loaded_after("from ocistore import unpack_layer", DAEMON_LAZY) == {
        "ocistore.unpack",
        "gzip",
    }


def test_zstandard_loads_with_the_first_zstd_layer(tmp_path: Path) -> None:
    # 37 ms of imports and up to 2 MiB resident that a node pulling only gzip layers never needs
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    for kind, loaded in (("gzip", set()), ("zstd", {"zstandard"})):
        blob, media_type = compress(raw.getvalue(), kind)
        layer = tmp_path / kind
        layer.write_bytes(blob)
        unpack = (
            "import tempfile\n"
            "from ocistore import unpack_layer\n"
            f"with open({str(layer)!r}, 'rb') as blob:\n"
            f"    unpack_layer(blob, tempfile.mkdtemp(), media_type={media_type!r})\n"
        )
        assert loaded_after(unpack, ("zstandard",)) == loaded, kind


def test_they_load_when_first_used() -> None:
    assert loaded_after("import crid.metrics; crid.metrics.enable()") == {"prometheus_client"}
    assert loaded_after("from crid.metrics import REGISTRY") == {"prometheus_client"}
    validate = (
        "from ocispec.schema import Schema, violations\n"
        "assert violations({'ociVersion': 1}, Schema.RUNTIME_CONFIG)"
    )
    assert loaded_after(validate) == {"jsonschema", "referencing"}


def test_the_streaming_server_loads_its_protocols_at_its_first_connection() -> None:
    assert loaded_after("import crid.streaming.server") == set()
    assert loaded_after("import crid.streaming.upgrade") == {"h11", "wsproto"}


def test_recording_does_nothing_until_metrics_are_enabled() -> None:
    code = (
        "from crid.metrics import instruments\n"
        "instruments.observe_runtime_call('runc', 'start', 0.01, ok=True)\n"
        "instruments.record_pull(10, 0.5)\n"
        "assert not instruments.enabled()\n"
        "registry = instruments.enable()\n"
        "assert registry.get_sample_value('crid_image_pulls_total') == 0\n"
        "instruments.record_pull(10, 0.5)\n"
        "assert registry.get_sample_value('crid_image_pulls_total') == 1\n"
    )
    assert loaded_after(code) == {"prometheus_client"}


def test_the_pull_stack_loads_cryptography_only_for_signature_policies(tmp_path: Path) -> None:
    # What crid's first PullImage imports (crid/images/pull.py), with an accept-anything
    # policy: cryptography (~10 MiB resident, kept for the daemon's life) stays out.
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    pull_stack = (
        "import ociimage.pull, ociimage.registries_d\n"
        f"from ociimage.policy import load_policy\nload_policy({str(policy)!r})"
    )
    # (yaml comes in only when registries.d is read, which a policy like this never needs;
    # httpx when a registry answers anything but a 200 at once: a challenge, an error)
    assert loaded_after(pull_stack) == set()
    assert "cryptography" in loaded_after("import ociimage.verifier")


def test_our_ctypes_handles_spawn_no_ldconfig() -> None:
    # ctypes.util.find_library("c") runs `ldconfig -p` in a child process; crid opened
    # the C library that way five times at every start. dlopen(NULL) needs no child.
    probe = (
        "import ctypes.util, json, sys\n"
        "found = ctypes.util.find_library\n"
        "callers = []\n"
        "def spy(name):\n"
        "    callers.append(sys._getframe(1).f_globals.get('__name__'))\n"
        "    return found(name)\n"
        "ctypes.util.find_library = spy\n"
        "import crid.server, crid.entry, crid.heap, ocistore.mounts, ocistore._sys\n"
        "import ocinet._libc, ocispec.generate._rootfs\n"
        "from crid.oci.features import kernel_has_mount_setattr\n"
        "kernel_has_mount_setattr()\n"
        "print(json.dumps(callers))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    callers = json.loads(result.stdout.splitlines()[-1])
    ours = ("crid", "ocispec", "ociimage", "ocistore", "ocinet")
    assert [c for c in callers if str(c).split(".")[0] in ours] == []
