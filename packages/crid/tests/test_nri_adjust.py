"""NRI adjustments onto an OCI config dict, their merging and ownership (pure logic;
the end-to-end effect on real containers is in test_nri_lifecycle.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crid.errors import InvalidConfigError
from crid.nri import api
from crid.nri.adjust import apply_adjustment, unsupported
from crid.nri.owners import merge_adjustments, owning_plugins


def _spec() -> dict[str, Any]:
    return {
        "annotations": {"keep": "1", "drop": "2"},
        "process": {"args": ["sleep", "1"], "env": ["A=1", "B=2"], "rlimits": []},
        "mounts": [{"destination": "/data", "type": "bind", "source": "/old"}],
        "linux": {
            "devices": [{"path": "/dev/old", "type": "c", "major": 9, "minor": 9}],
            "resources": {
                "devices": [{"allow": True, "type": "c", "major": 9, "minor": 9, "access": "rwm"}],
                "memory": {"limit": 1000},
            },
            "namespaces": [{"type": "network", "path": "/x"}],
        },
    }


def test_removals_replacements_and_additions() -> None:
    spec = _spec()
    adjust = api.ContainerAdjustment(
        annotations={"-drop": "", "new": "3"},
        env=[api.KeyValue(key="-A"), api.KeyValue(key="B", value="20"), api.KeyValue(key="C")],
        mounts=[
            api.Mount(destination="/data", type="bind", source="/new", options=["ro"]),
            api.Mount(destination="/extra", type="tmpfs", source="tmpfs"),
        ],
        rlimits=[api.POSIXRlimit(type="RLIMIT_NOFILE", hard=10, soft=5)],
        args=["", "echo", "hi"],
    )
    adjust.linux.devices.add(path="-/dev/old")
    adjust.linux.devices.add(path="/dev/new", type="c", major=1, minor=3)
    adjust.linux.namespaces.add(type="-network")
    adjust.linux.resources.memory.limit.value = 2048
    adjust.linux.resources.cpu.shares.value = 100
    adjust.hooks.poststop.add(path="/bin/true")
    apply_adjustment(spec, adjust, cgroup_version=1)

    assert spec["annotations"] == {"keep": "1", "new": "3"}
    assert spec["process"]["env"] == ["B=20", "C="]
    assert spec["process"]["args"] == ["echo", "hi"]
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 10, "soft": 5}]
    assert [(m["destination"], m["source"]) for m in spec["mounts"]] == [
        ("/data", "/new"),
        ("/extra", "tmpfs"),
    ]
    assert spec["linux"]["devices"] == [{"path": "/dev/new", "type": "c", "major": 1, "minor": 3}]
    rules = spec["linux"]["resources"]["devices"]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    assert spec["linux"]["namespaces"] == []
    assert spec["linux"]["resources"]["memory"]["limit"] == 2048
    assert spec["linux"]["resources"]["cpu"]["shares"] == 100
    assert spec["hooks"] == {"poststop": [{"path": "/bin/true"}]}


def test_unsupported_adjustments_are_refused_by_name() -> None:
    adjust = api.ContainerAdjustment(CDI_devices=[api.CDIDevice(name="vendor.com/gpu=0")])
    assert unsupported(adjust) == []  # CDI devices are applied (test_cdi.py)
    adjust.linux.io_priority.priority = 4
    adjust.linux.resources.rdt_class.value = "gold"
    found = unsupported(adjust)
    assert found == ["I/O priority", "RDT class"]
    with pytest.raises(InvalidConfigError, match="I/O priority; RDT class"):
        apply_adjustment(_spec(), adjust, cgroup_version=1)


def test_cdi_devices_come_from_the_spec_dirs(tmp_path: Path) -> None:
    adjust = api.ContainerAdjustment(CDI_devices=[api.CDIDevice(name="vendor.com/gpu=0")])
    with pytest.raises(InvalidConfigError, match=r"unknown CDI device\(s\) vendor.com/gpu=0"):
        apply_adjustment(_spec(), adjust, cgroup_version=1, cdi_spec_dirs=[str(tmp_path)])
    spec_file = {
        "cdiVersion": "0.6.0",
        "kind": "vendor.com/gpu",
        "devices": [{"name": "0", "containerEdits": {"env": ["GPU=0"]}}],
    }
    (tmp_path / "gpu.json").write_text(json.dumps(spec_file))
    adjust.env.add(key="GPU", value="nri")
    spec = _spec()
    apply_adjustment(spec, adjust, cgroup_version=1, cdi_spec_dirs=[str(tmp_path)])
    assert "GPU=0" in spec["process"]["env"] and "GPU=nri" not in spec["process"]["env"]


def test_merging_keeps_order_and_ownership_names_the_last_plugin() -> None:
    first = api.ContainerAdjustment(annotations={"a": "1"}, args=["one"])
    first.linux.resources.memory.limit.value = 1
    first.env.add(key="X", value="1")
    second = api.ContainerAdjustment(annotations={"a": "2", "b": "3"}, args=["two", "args"])
    second.env.add(key="Y", value="2")
    adjustments = [("10-first", first), ("20-second", second)]

    merged = merge_adjustments(adjustments)
    assert dict(merged.annotations) == {"a": "2", "b": "3"}
    assert list(merged.args) == ["two", "args"]
    assert [kv.key for kv in merged.env] == ["X", "Y"]
    assert merged.linux.resources.memory.limit.value == 1

    owners = owning_plugins("c1", adjustments).owners["c1"]
    assert dict(owners.compound[api.Annotations].owners) == {"a": "20-second", "b": "20-second"}
    assert dict(owners.compound[api.Env].owners) == {"X": "10-first", "Y": "20-second"}
    assert owners.simple[api.MemLimit] == "10-first"
    assert owners.simple[api.Args] == "20-second"
