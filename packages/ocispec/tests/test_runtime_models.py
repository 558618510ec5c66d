"""Runtime-spec models: round trips (property-based and against runc's own output), features."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings

import ocispec.runtime as rt
from ocispec import Schema, SpecError, violations
from ocispec._model import JSONModel
from ocispec.runtime import (
    Features,
    IOPriority,
    Linux,
    Memory,
    Process,
    Spec,
    State,
    User,
    compare_versions,
    parse_features,
    read_features,
)
from ocispec.testing import models

RUNTIME_MODELS = sorted(
    (
        obj
        for obj in vars(rt).values()
        if isinstance(obj, type) and issubclass(obj, JSONModel) and obj is not JSONModel
    ),
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("cls", RUNTIME_MODELS, ids=lambda c: c.__name__)
def test_round_trip_property(cls: type[JSONModel]) -> None:
    @settings(max_examples=40 if cls in (Spec, Linux, Process) else 25, deadline=None)
    @given(models(cls))
    def check(value: JSONModel) -> None:
        text = value.to_json()
        again = cls.from_json(text)
        assert again == value
        assert again.to_json() == text

    check()


@pytest.mark.binaries("/usr/sbin/runc")
@pytest.mark.parametrize("rootless", [False, True])
def test_runc_spec_output_round_trips_exactly(tmp_path: Path, rootless: bool) -> None:
    args = ["/usr/sbin/runc", "spec", "--bundle", str(tmp_path)] + (
        ["--rootless"] if rootless else []
    )
    subprocess.run(args, check=True)
    doc = json.loads((tmp_path / "config.json").read_text())
    spec = Spec.from_dict(doc)
    assert spec.to_dict() == doc
    assert spec.process is not None and spec.process.args == ("sh",)
    assert violations(spec, Schema.RUNTIME_CONFIG) == []


def test_pointer_fields_keep_zero_and_bools_omit_false() -> None:
    p = Process(cwd="/", oom_score_adj=0, user=User(uid=0, gid=0, umask=0))
    assert p.to_dict() == {"user": {"uid": 0, "gid": 0, "umask": 0}, "cwd": "/", "oomScoreAdj": 0}
    m = Memory(limit=0, swappiness=0, disable_oom_killer=False)
    assert m.to_dict() == {"limit": 0, "swappiness": 0, "disableOOMKiller": False}
    assert Process(cwd="/").to_dict() == {"user": {"uid": 0, "gid": 0}, "cwd": "/"}
    assert IOPriority(class_="IOPRIO_CLASS_BE").to_dict() == {
        "class": "IOPRIO_CLASS_BE",
        "priority": 0,
    }


def test_unknown_platform_sections_and_fields_survive() -> None:
    doc = {
        "ociVersion": "1.3.0",
        "windows": {"layerFolders": ["C:\\a"]},
        "linux": {"intelRdt": {"enableCMT": True}, "futureKnob": {"x": [1, 2]}},
        "process": {"cwd": "/", "user": {"uid": 1, "gid": 2}, "newThing": None},
    }
    spec = Spec.from_dict(doc)
    assert spec.extra["windows"] == {"layerFolders": ["C:\\a"]}
    assert spec.linux is not None and spec.linux.extra["futureKnob"] == {"x": [1, 2]}
    assert spec.to_dict() == doc


def test_prestart_is_readable() -> None:
    spec = Spec.from_dict(
        {"ociVersion": "1.0.0", "hooks": {"prestart": [{"path": "/bin/true", "timeout": 5}]}}
    )
    assert spec.hooks is not None and spec.hooks.prestart[0].timeout == 5


def test_state_from_runc_state_output() -> None:
    text = (
        '{"ociVersion":"1.0.2-dev","id":"c1","pid":4242,"status":"running","bundle":"/b",'
        '"rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z","owner":""}'
    )
    state = State.from_json(text)
    assert state.pid == 4242 and state.status == rt.ContainerStatus.RUNNING
    assert state.extra["rootfs"] == "/b/rootfs"
    assert json.loads(state.to_json()) == json.loads(text)


FEATURES = {
    "ociVersionMin": "1.0.0",
    "ociVersionMax": "1.0.2-dev",
    "hooks": ["prestart", "createRuntime", "poststop"],
    "mountOptions": ["bind", "rbind", "ro", "rro"],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
        "capabilities": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
        "cgroup": {"v1": True, "v2": True, "systemd": True},
        "seccomp": {
            "enabled": True,
            "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"],
            "archs": ["SCMP_ARCH_X86_64"],
        },
        "apparmor": {"enabled": True},
        "mountExtensions": {"idmap": {"enabled": False}},
    },
    "annotations": {"org.opencontainers.runc.version": "1.1.5"},
}


def test_features_parser_answers_questions() -> None:
    f = parse_features(json.dumps(FEATURES))
    assert f.supports_oci_version("1.0.0") and f.supports_oci_version("1.0.2")
    assert not f.supports_oci_version("1.1.0") and not f.supports_oci_version("0.9.0")
    assert f.supports_hook("createRuntime") and not f.supports_hook("startContainer")
    assert f.supports_mount_option("rro") and not f.supports_mount_option("idmap")
    assert f.supports_namespace("user") and not f.supports_namespace("time")
    assert f.supports_capability("sys_admin") and not f.supports_capability("CAP_BPF")
    assert f.supports_seccomp() and f.supports_seccomp_action("SCMP_ACT_ERRNO")
    assert not f.supports_seccomp_action("SCMP_ACT_NOTIFY")
    assert not f.supports_idmapped_mounts()
    assert f.to_dict() == FEATURES
    assert violations(FEATURES, Schema.RUNTIME_FEATURES) == []
    empty = Features(oci_version_min="1.0.0", oci_version_max="1.3.0")
    assert empty.supports_hook("poststart") and not empty.supports_hook("poststart", unknown=False)
    assert empty.supports_oci_version("1.3.0") and not empty.supports_oci_version("1.3.1")


def test_compare_versions() -> None:
    assert compare_versions("1.0.2-dev", "1.0.2") == -1
    assert compare_versions("1.10.0", "1.9.9") == 1
    assert compare_versions("1.3.0", "1.3.0") == 0
    with pytest.raises(ValueError, match="not a spec version"):
        compare_versions("one", "1.0.0")


@pytest.mark.binaries("/usr/sbin/runc")
def test_read_features_from_installed_runc() -> None:
    f = read_features("/usr/sbin/runc")
    assert f.supports_namespace("pid")
    assert f.supports_capability("CAP_CHOWN")
    assert f.supports_hook("createContainer")
    assert violations(f, Schema.RUNTIME_FEATURES) == []


def test_read_features_errors() -> None:
    with pytest.raises(SpecError, match="cannot run"):
        read_features("/nonexistent/runtime")
    with pytest.raises(SpecError, match="failed"):
        read_features("/bin/false")


def test_construction_normalizes_and_to_dict_encodes_each_field_kind() -> None:
    """The per-class encodings and normalizations (computed once per class) keep what
    the generic codecs did: lists become tuples, dicts nested models, falsy omitempty
    values are left out, pointers (``X | None``) are written even when zero."""
    mapping = rt.IDMapping(container_id=0, host_id=1000, size=1)
    mount = rt.Mount(
        destination="/data",
        options=["rbind", "ro"],  # type: ignore[arg-type]
        uid_mappings=[{"containerID": 0, "hostID": 1000, "size": 1}],  # type: ignore[list-item]
    )
    assert mount.options == ("rbind", "ro")
    assert mount.uid_mappings == (mapping,)
    same = rt.Mount(destination="/data", options=mount.options, uid_mappings=(mapping,))
    assert same.options is mount.options  # a tuple is kept as it is
    assert mount.to_dict() == {
        "destination": "/data",
        "options": ["rbind", "ro"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    }
    assert rt.Mount(destination="").to_dict() == {"destination": ""}
    process = rt.Process(cwd="/", oom_score_adj=0)
    assert process.to_dict()["oomScoreAdj"] == 0
    assert json.loads(rt.Spec.from_dict({"ociVersion": "1.0.0", "x-extra": [1]}).to_json()) == {
        "ociVersion": "1.0.0",
        "x-extra": [1],
    }
