"""The test helpers that ship as ocinet.testing."""

from __future__ import annotations

import ipaddress

from ocinet import parse_network_config
from ocinet.testing import bridge_network, random_bridge_name, random_test_subnet


def test_bridge_names_fit_the_kernel_limit_and_differ() -> None:
    names = {random_bridge_name() for _ in range(50)}
    assert len(names) == 50
    assert all(len(n) <= 15 and n.startswith("crt") for n in names)


def test_test_subnets_are_private_10x_and_free() -> None:
    subnet = random_test_subnet()
    assert subnet.subnet_of(ipaddress.IPv4Network("10.128.0.0/9"))
    assert subnet.prefixlen == 24


def test_bridge_network_never_masquerades() -> None:
    conf = bridge_network(name="t", bridge="crt0", subnet="10.200.0.0/24", data_dir="/tmp/x")
    network = parse_network_config(conf)
    assert network.plugin_types == ("bridge", "portmap")
    assert network.plugins[0].raw["ipMasq"] is False
    assert network.plugins[1].capabilities == frozenset({"portMappings"})
