"""CDI devices: spec files (JSON and YAML) resolved to OCI edits, and real containers
that get a device node, environment and a bind mount from a CDI spec, asked for by an
NRI plugin's adjustment and by the CRI's own ``CDI_devices``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.cdi import annotation_devices, cri_devices, inject
from crid.errors import InvalidConfigError

from ._lifecycle import exec_sync, pod_config, run_pod, start_container
from .test_nri_lifecycle import Env, list_container_ids, nri_env, sleeper

NULL = os.stat("/dev/null")


def write_specs(tmp: Path) -> tuple[Path, Path]:
    """Two spec directories: ``example.com/test`` (JSON) with devices ``null`` and
    ``other``; ``example.com/yaml`` (YAML) with ``zero``. Returns (spec dir, shared dir)."""
    specs = tmp / "cdi"
    specs.mkdir()
    shared = tmp / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from cdi\n")
    spec = {
        "cdiVersion": "0.6.0",
        "kind": "example.com/test",
        "containerEdits": {"env": ["CDI_SPEC=yes"]},
        "devices": [
            {
                "name": "null",
                "containerEdits": {
                    "env": ["CDI_DEVICE=null"],
                    "deviceNodes": [{"path": "/dev/cdi-null", "hostPath": "/dev/null"}],
                    "mounts": [
                        {
                            "hostPath": str(shared),
                            "containerPath": "/cdi-shared",
                            "options": ["ro", "rbind"],
                        }
                    ],
                },
            },
            {
                "name": "other",
                "containerEdits": {
                    "deviceNodes": [
                        {"path": "/dev/cdi-other", "type": "c", "major": 1, "minor": 3}
                    ],
                    "hooks": [{"hookName": "createContainer", "path": "/bin/true"}],
                },
            },
        ],
    }
    (specs / "test.json").write_text(json.dumps(spec))
    (specs / "zero.yaml").write_text(
        "cdiVersion: 0.6.0\nkind: example.com/yaml\ndevices:\n"
        "  - name: zero\n    containerEdits:\n"
        "      deviceNodes:\n        - path: /dev/cdi-zero\n          hostPath: /dev/zero\n"
        "          permissions: rw\n"
    )
    return specs, shared


def base_spec() -> dict[str, Any]:
    return {"process": {"env": ["PATH=/bin", "CDI_DEVICE=old"]}, "linux": {}, "mounts": []}


def test_inject_applies_spec_and_device_edits(tmp_path: Path) -> None:
    specs, shared = write_specs(tmp_path)
    spec = base_spec()
    inject(spec, ["example.com/test=null", "example.com/yaml=zero"], [str(specs)])
    assert spec["process"]["env"] == ["PATH=/bin", "CDI_SPEC=yes", "CDI_DEVICE=null"]
    null = {
        "path": "/dev/cdi-null",
        "type": "c",
        "major": os.major(NULL.st_rdev),
        "minor": os.minor(NULL.st_rdev),
        "fileMode": 0o666,
    }
    devices = spec["linux"]["devices"]
    assert devices[0] == null
    assert devices[1]["path"] == "/dev/cdi-zero" and devices[1]["minor"] == 5
    rules = spec["linux"]["resources"]["devices"]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in rules
    assert {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rw"} in rules
    assert spec["mounts"] == [
        {
            "destination": "/cdi-shared",
            "type": "bind",
            "source": str(shared),
            "options": ["ro", "rbind"],
        }
    ]


def test_inject_uses_given_numbers_and_adds_hooks(tmp_path: Path) -> None:
    specs, _ = write_specs(tmp_path)
    spec = base_spec()
    inject(spec, ["example.com/test=other"], [str(specs)])
    assert spec["linux"]["devices"] == [
        {"path": "/dev/cdi-other", "type": "c", "major": 1, "minor": 3}
    ]
    assert spec["hooks"] == {"createContainer": [{"path": "/bin/true"}]}


def test_later_directory_overrides_earlier(tmp_path: Path) -> None:
    specs, _ = write_specs(tmp_path)
    later = tmp_path / "later"
    later.mkdir()
    override = {
        "cdiVersion": "0.6.0",
        "kind": "example.com/test",
        "devices": [{"name": "null", "containerEdits": {"env": ["CDI_DEVICE=later"]}}],
    }
    (later / "override.json").write_text(json.dumps(override))
    spec = base_spec()
    inject(spec, ["example.com/test=null"], [str(specs), str(later), str(tmp_path / "none")])
    assert spec["process"]["env"] == ["PATH=/bin", "CDI_DEVICE=later"]
    assert "devices" not in spec["linux"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("example.com/test=missing", "unknown CDI device(s) example.com/test=missing"),
        ("example.com/gpu=0", "unknown CDI device(s) example.com/gpu=0"),
        ("gpu0", "'gpu0' is not a qualified vendor/class=name"),
        ("example.com/test=", "'example.com/test=' has an invalid device name"),
    ],
)
def test_bad_names_are_refused_and_change_nothing(tmp_path: Path, name: str, message: str) -> None:
    specs, _ = write_specs(tmp_path)
    spec = base_spec()
    with pytest.raises(InvalidConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        inject(spec, ["example.com/test=null", name], [str(specs)])
    assert spec == base_spec()


def test_unreadable_spec_is_named(tmp_path: Path) -> None:
    specs, _ = write_specs(tmp_path)
    (specs / "broken.yaml").write_text("kind: [unclosed\n")
    spec = base_spec()
    with pytest.raises(InvalidConfigError, match=f"CDI spec {specs}/broken.yaml is unreadable"):
        inject(spec, ["example.com/test=null"], [str(specs)])
    assert spec == base_spec()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"kind": "no-class"}, "kind 'no-class' is not vendor/class"),
        ({"devices": {}}, "no 'devices' list"),
        (
            {"devices": [{"name": "x", "containerEdits": {"deviceNodes": [{"path": "dev"}]}}]},
            "device node path 'dev' is not absolute",
        ),
        (
            {
                "devices": [
                    {
                        "name": "x",
                        "containerEdits": {
                            "deviceNodes": [
                                {"path": "/dev/x", "hostPath": "/dev/null", "permissions": "rwx"}
                            ]
                        },
                    }
                ]
            },
            "invalid permissions 'rwx'",
        ),
    ],
)
def test_malformed_specs_are_refused(tmp_path: Path, edit: dict[str, Any], message: str) -> None:
    specs = tmp_path / "cdi"
    specs.mkdir()
    spec_file: dict[str, Any] = {"cdiVersion": "0.6.0", "kind": "example.com/bad"}
    spec_file["devices"] = [{"name": "x"}]
    spec_file.update(edit)
    (specs / "bad.json").write_text(json.dumps(spec_file))
    with pytest.raises(InvalidConfigError, match=message):
        inject(base_spec(), ["example.com/bad=x"], [str(specs)])


def test_missing_host_node_is_named(tmp_path: Path) -> None:
    specs = tmp_path / "cdi"
    specs.mkdir()
    spec_file = {
        "cdiVersion": "0.6.0",
        "kind": "example.com/gone",
        "devices": [{"name": "x", "containerEdits": {"deviceNodes": [{"path": "/dev/nope-x"}]}}],
    }
    (specs / "gone.json").write_text(json.dumps(spec_file))
    with pytest.raises(InvalidConfigError, match="device node /dev/nope-x cannot be read"):
        inject(base_spec(), ["example.com/gone=x"], [str(specs)])


def test_cri_requests_come_from_the_field_and_annotations() -> None:
    config = api_pb2.ContainerConfig(
        CDI_devices=[api_pb2.CDIDevice(name="a.com/b=c")],
        annotations={"cdi.k8s.io/plugin": "d.com/e=f, d.com/e=g", "other": "x.com/y=z"},
    )
    assert cri_devices(config.SerializeToString()) == ["a.com/b=c", "d.com/e=f", "d.com/e=g"]
    assert annotation_devices({}) == []


# -- real containers -------------------------------------------------------------------


async def _sees_the_device(env: Env, ctr: str) -> None:
    script = (
        "test -c /dev/cdi-null && echo x > /dev/cdi-null && echo $CDI_SPEC $CDI_DEVICE"
        " && cat /cdi-shared/hello"
    )
    out = await exec_sync(env, ctr, ["sh", "-c", script])
    assert out.exit_code == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["yes null", "from cdi"]
    out = await exec_sync(env, ctr, ["touch", "/cdi-shared/new"])  # mounted read-only
    assert out.exit_code != 0


@pytest.mark.root
@pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge")
async def test_nri_plugin_and_cri_get_cdi_devices_into_containers(tmp_path: Path) -> None:
    specs, _ = write_specs(tmp_path)
    runtime = f'cdi_spec_dirs = ["{specs}"]\n'
    async with nri_env(tmp_path, runtime=runtime) as (env, plugins):
        await plugins.start(
            "cdi", "10", adjust={"CDI_devices": [{"name": "example.com/test=null"}]}
        )
        pod = pod_config(env, "cdi")
        pod_id = await run_pod(env, pod)
        ctr = await start_container(env, pod_id, pod, sleeper("nri"))
        await _sees_the_device(env, ctr)

        plugins.behave("cdi")  # no adjustment from now on: the CRI asks
        config = sleeper("cri")
        config.CDI_devices.add(name="example.com/test=null")
        ctr = await start_container(env, pod_id, pod, config)
        await _sees_the_device(env, ctr)


@pytest.mark.root
@pytest.mark.binaries("runc", "conmon", "iptables", "/usr/bin/busybox", "/usr/lib/cni/bridge")
async def test_unknown_cdi_devices_are_refused_leaving_nothing(tmp_path: Path) -> None:
    specs, _ = write_specs(tmp_path)
    runtime = f'cdi_spec_dirs = ["{specs}"]\n'
    async with nri_env(tmp_path, runtime=runtime) as (env, plugins):
        await plugins.start("cdi", "10", adjust={"CDI_devices": [{"name": "vendor.com/gpu=0"}]})
        pod = pod_config(env, "cdi")
        pod_id = await run_pod(env, pod)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await start_container(env, pod_id, pod, sleeper("nri"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = str(caught.value.details())
        assert "NRI plugin 10-cdi" in details and "vendor.com/gpu=0" in details

        plugins.behave("cdi")
        config = sleeper("cri")
        config.CDI_devices.add(name="example.com/test=absent")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await start_container(env, pod_id, pod, config)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "unknown CDI device(s) example.com/test=absent" in str(caught.value.details())
        assert await list_container_ids(env, pod_id) == []
        assert env.daemon.context is not None
        bundles = env.daemon.context.layout.runroot / "containers"
        assert list(bundles.iterdir()) == []
