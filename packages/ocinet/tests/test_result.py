"""Result parsing and conversion between CNI spec versions."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocinet import DNS, Interface, IPConfig, Result, ResultError, Route
from ocinet.version import highest_supported, parse_version, version_at_least

V100 = {
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "aa:bb:cc:dd:ee:01"},
        {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/netns/p"},
    ],
    "ips": [
        {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 1},
        {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 1},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "::/0"}],
    "dns": {"nameservers": ["10.1.0.53"], "search": ["svc.local"]},
}


def test_versions_parse_and_order() -> None:
    assert parse_version("0.3.1") == (0, 3, 1)
    assert version_at_least("1.0.0", "0.4.0")
    assert not version_at_least("0.3.1", "0.4.0")
    assert highest_supported(["0.4.0", "1.1.0", "9.9.9"]) == "1.1.0"
    assert highest_supported(["2.0.0"]) is None
    with pytest.raises(ValueError):
        parse_version("1.0")


def test_parse_100_typed() -> None:
    result = Result.from_json(V100)
    assert result.cni_version == "1.0.0"
    assert result.interfaces[1] == Interface(
        name="eth0", mac="aa:bb:cc:dd:ee:02", sandbox="/run/netns/p"
    )
    assert result.ips[0] == IPConfig(address="10.1.0.5/24", gateway="10.1.0.1", interface=1)
    assert result.ips[0].ip == ipaddress.ip_address("10.1.0.5")
    assert [ip.family for ip in result.ips] == [4, 6]
    assert result.routes[1] == Route(dst="::/0")
    assert result.dns == DNS(nameservers=("10.1.0.53",), search=("svc.local",))
    assert result.to_json() == V100


def test_convert_100_to_040_adds_ip_versions_and_back() -> None:
    old = Result.from_json(V100).to_json("0.4.0")
    assert old["cniVersion"] == "0.4.0"
    assert [ip["version"] for ip in old["ips"]] == ["4", "6"]
    assert Result.from_json(old).convert("1.0.0").to_json() == V100


def test_convert_to_020_keeps_first_address_per_family_and_routes() -> None:
    legacy = Result.from_json(V100).to_json("0.2.0")
    assert legacy == {
        "cniVersion": "0.2.0",
        "ip4": {
            "ip": "10.1.0.5/24",
            "gateway": "10.1.0.1",
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
        },
        "ip6": {"ip": "fd00::5/64", "gateway": "fd00::1", "routes": [{"dst": "::/0"}]},
        "dns": {"nameservers": ["10.1.0.53"], "search": ["svc.local"]},
    }
    back = Result.from_json(legacy).convert("1.0.0")
    assert [ip.address for ip in back.ips] == ["10.1.0.5/24", "fd00::5/64"]
    assert back.interfaces == ()


def test_11_route_extras_survive_11_and_drop_in_04() -> None:
    data = {
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "mtu": 1400, "socketPath": "/s", "pciID": "0000:01"}],
        "ips": [{"address": "10.2.0.2/24"}],
        "routes": [{"dst": "10.3.0.0/16", "gw": "10.2.0.1", "mtu": 1300, "table": 100}],
    }
    result = Result.from_json(data)
    assert result.routes[0].table == 100 and result.interfaces[0].mtu == 1400
    assert result.to_json() == data
    v04 = result.to_json("0.4.0")
    assert v04["routes"] == [{"dst": "10.3.0.0/16", "gw": "10.2.0.1"}]
    assert v04["interfaces"] == [{"name": "eth0"}]


@pytest.mark.parametrize(
    "bad",
    [
        {"cniVersion": "3.0.0"},
        {"ips": []},
        {"cniVersion": "1.0.0", "ips": [{"address": "not-an-ip"}]},
        {"cniVersion": "1.0.0", "ips": [{"gateway": "10.0.0.1"}]},
        {"cniVersion": "1.0.0", "routes": [{"gw": "10.0.0.1"}]},
        {"cniVersion": "0.2.0", "ip4": {"ip": "999.1.1.1/24"}},
        [],
        b"{not json",
    ],
)
def test_malformed_results_raise_result_error(bad: object) -> None:
    with pytest.raises(ResultError):
        Result.from_json(bad)  # type: ignore[arg-type]


def test_convert_to_unknown_version_fails() -> None:
    with pytest.raises(ResultError):
        Result.from_json(V100).convert("2.0.0")


_v4 = st.builds(
    lambda a, p: f"{ipaddress.IPv4Address(a)}/{p}",
    st.integers(0, 2**32 - 1),
    st.integers(1, 32),
)
_v6 = st.builds(
    lambda a, p: f"{ipaddress.IPv6Address(a)}/{p}",
    st.integers(0, 2**128 - 1),
    st.integers(1, 128),
)


@given(
    ips=st.lists(st.one_of(_v4, _v6), max_size=4),
    version=st.sampled_from(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]),
)
def test_conversion_between_modern_versions_keeps_addresses(ips: list[str], version: str) -> None:
    result = Result(
        cni_version="1.0.0",
        interfaces=(Interface(name="eth0"),),
        ips=tuple(IPConfig(address=a, interface=0) for a in ips),
    )
    converted = result.convert(version)
    assert converted.cni_version == version
    assert converted.convert("1.0.0") == result
