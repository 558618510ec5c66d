"""Parsing and validating network configurations; loading a directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocinet import ConfigError, RuntimeConf, load_config_dir, parse_network_config
from ocinet.runtime import Bandwidth, PodRef, PortMapping


def _list(name: str = "net", version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": name, "plugins": [{"type": "bridge"}], **extra}


def test_conflist_parses_with_capabilities() -> None:
    cfg = parse_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "podnet",
            "disableCheck": True,
            "plugins": [
                {"type": "bridge", "bridge": "cni0"},
                {"type": "portmap", "capabilities": {"portMappings": True, "bandwidth": False}},
            ],
        }
    )
    assert cfg.name == "podnet" and cfg.cni_version == "1.0.0"
    assert cfg.plugin_types == ("bridge", "portmap")
    assert cfg.plugins[1].capabilities == frozenset({"portMappings"})
    assert cfg.disable_check and not cfg.disable_gc
    assert cfg.plugins[0].raw["bridge"] == "cni0"


def test_single_plugin_conf_is_lifted_to_a_list() -> None:
    cfg = parse_network_config(
        json.dumps({"cniVersion": "0.4.0", "name": "single", "type": "bridge", "isGateway": True})
    )
    assert cfg.name == "single" and cfg.cni_version == "0.4.0"
    assert cfg.plugin_types == ("bridge",)
    assert cfg.plugins[0].raw["isGateway"] is True


def test_cni_versions_picks_highest_supported() -> None:
    cfg = parse_network_config(_list(version="", cniVersions=["0.4.0", "1.1.0", "7.0.0"]))
    assert cfg.cni_version == "1.1.0"
    with pytest.raises(ConfigError, match="none of cniVersions"):
        parse_network_config(_list(cniVersions=["7.0.0"]))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ({"cniVersion": "1.0.0", "name": "x"}, "neither"),
        ({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}, "network name"),
        ({"cniVersion": "1.0.0", "name": "bad name", "plugins": [{"type": "b"}]}, "network name"),
        ({"name": "x", "plugins": [{"type": "bridge"}]}, "missing cniVersion"),
        ({"cniVersion": "9.0.0", "name": "x", "plugins": [{"type": "b"}]}, "unsupported"),
        ({"cniVersion": "1.0.0", "name": "x", "plugins": []}, "no plugins"),
        ({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "../sh"}]}, "plugin type"),
        ({"cniVersion": "1.0.0", "name": "x", "plugins": [{}]}, "plugin type"),
        (
            {"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "b", "capabilities": 1}]},
            "capabilities",
        ),
        (_list(disableCheck="yes"), "disableCheck"),
    ],
)
def test_invalid_configs_are_rejected(data: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_network_config(data)


def test_directory_default_is_first_valid_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "30-later.conflist").write_text(json.dumps(_list("later")))
    (tmp_path / "10-broken.conflist").write_text("{")
    (tmp_path / "20-first.conf").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "first", "type": "bridge"})
    )
    (tmp_path / "40-dup.json").write_text(json.dumps(_list("later")))
    (tmp_path / "50-ignored.txt").write_text(json.dumps(_list("txt")))
    (tmp_path / ".hidden.conflist").write_text(json.dumps(_list("hidden")))
    contents = load_config_dir(tmp_path)
    assert [n.name for n in contents.networks] == ["first", "later"]
    assert contents.networks[0].source == tmp_path / "20-first.conf"
    assert sorted(p.name for p, _ in contents.errors) == ["10-broken.conflist", "40-dup.json"]


def test_missing_directory_is_empty(tmp_path: Path) -> None:
    contents = load_config_dir(tmp_path / "nope")
    assert contents.networks == () and contents.errors == ()


def test_runtime_conf_for_pod_builds_args_and_capabilities() -> None:
    rt = RuntimeConf.for_pod(
        container_id="abc123",
        netns="/run/netns/x",
        pod=PodRef(namespace="ns1", name="web", uid="u-1"),
        port_mappings=[PortMapping(host_port=8080, container_port=80, protocol="TCP")],
        bandwidth=Bandwidth(ingress_rate=1000, ingress_burst=10),
        dns={"servers": ["10.0.0.10"]},
        ips=["10.1.0.9/24"],
        mac="aa:bb:cc:dd:ee:ff",
        cgroup_path="/kubepods/pod1",
    )
    assert rt.cni_args() == (
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;"
        "K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1"
    )
    assert rt.capability_args["portMappings"] == [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
    ]
    assert rt.capability_args["bandwidth"]["ingressRate"] == 1000
    assert set(rt.capability_args) == {
        "portMappings",
        "bandwidth",
        "dns",
        "ips",
        "mac",
        "cgroupPath",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"container_id": ""},
        {"container_id": "a/b"},
        {"container_id": "ok", "ifname": "a" * 16},
        {"container_id": "ok", "ifname": "eth/0"},
        {"container_id": "ok", "args": (("K", "v;x"),)},
    ],
)
def test_runtime_conf_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RuntimeConf(**kwargs)
