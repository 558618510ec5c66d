"""Real CNI plugins (bridge, host-local, portmap, loopback) in namespaces the tests create.

Every session gets its own bridge name and 10.x subnet; networks never masquerade;
teardown removes bridges, namespaces and iptables chains even when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocinet import (
    CNI,
    CNIError,
    NetworkConfig,
    PodNamespaces,
    PodNetwork,
    PodRef,
    PortMapping,
    Result,
    RuntimeConf,
    parse_network_config,
    pin_pod_namespaces,
)
from ocinet import testing as nettest

pytestmark = [
    pytest.mark.root,
    pytest.mark.binaries(
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/lib/cni/portmap",
        "/usr/lib/cni/loopback",
        "iptables",
        "ip",
    ),
]
PLUGIN_DIRS = ["/usr/lib/cni"]


@dataclass
class SessionNet:
    """The session's bridge, subnet and network name."""

    bridge: str
    subnet: str
    name: str


@pytest.fixture(scope="session")
def test_net() -> Iterator[SessionNet]:
    bridge = nettest.random_bridge_name()
    net = SessionNet(bridge=bridge, subnet=str(nettest.random_test_subnet()), name=f"crt-{bridge}")
    try:
        yield net
    finally:
        nettest.remove_iptables_rules_mentioning(net.name)
        nettest.delete_link(net.bridge)


class Harness:
    """One test's networks, pods and what to undo afterwards."""

    def __init__(self, tmp_path: Path, net: SessionNet) -> None:
        self.tmp_path = tmp_path
        self.net = net
        self.conf_dir = tmp_path / "net.d"
        self.conf_dir.mkdir()
        self.ipam_dir = tmp_path / "ipam"
        self.cache_dir = tmp_path / "cache"
        self.conf = nettest.bridge_network(
            name=net.name, bridge=net.bridge, subnet=net.subnet, data_dir=self.ipam_dir
        )
        (self.conf_dir / "10-test.conflist").write_text(json.dumps(self.conf))
        self.network: NetworkConfig = parse_network_config(self.conf)
        # Same network (same name, so the same IP allocations) without portmap: portmap
        # 1.1.1's CHECK wrongly requires an IPv6 chain, so CHECK runs on this variant.
        self.bridge_only = parse_network_config(
            nettest.bridge_network(
                name=net.name,
                bridge=net.bridge,
                subnet=net.subnet,
                data_dir=self.ipam_dir,
                portmap=False,
            )
        )
        self.loopback = parse_network_config(
            {"cniVersion": "1.0.0", "name": f"{net.name}-lo", "plugins": [{"type": "loopback"}]}
        )
        self.cni = CNI(plugin_dirs=PLUGIN_DIRS, cache_dir=self.cache_dir, timeout=30)
        self.pods: list[tuple[str, PodNamespaces]] = []

    def pod(self, name: str) -> PodNamespaces:
        pod = pin_pod_namespaces(self.tmp_path / "run", name, hostname=name)
        self.pods.append((name, pod))
        return pod

    def rt(self, cid: str, pod: PodNamespaces, **kw: Any) -> RuntimeConf:
        assert pod.net is not None
        return RuntimeConf.for_pod(
            container_id=cid,
            netns=str(pod.net.path),
            pod=PodRef(namespace="default", name=cid, uid=f"uid-{cid}"),
            **kw,
        )

    def cleanup(self) -> None:
        for cid, pod in self.pods:
            netns = str(pod.net.path) if pod.net else ""
            for network, ifname in ((self.bridge_only, "eth0"), (self.loopback, "lo")):
                # Best effort: the session teardown sweeps whatever is left.
                with contextlib.suppress(Exception):
                    self.cni.delete_sync(
                        network, RuntimeConf(container_id=cid, netns=netns, ifname=ifname)
                    )
            pod.remove()


@pytest.fixture
def harness(tmp_path: Path, test_net: SessionNet) -> Iterator[Harness]:
    h = Harness(tmp_path, test_net)
    try:
        yield h
    finally:
        h.cleanup()


def _host_veth(result: Result, bridge: str) -> str:
    (veth,) = [i.name for i in result.interfaces if not i.sandbox and i.name != bridge]
    return veth


def _netns(pod: PodNamespaces) -> str:
    assert pod.net is not None
    return str(pod.net.path)


def _bridge_ports(bridge: str) -> set[str]:
    brif = Path("/sys/class/net", bridge, "brif")
    return {p.name for p in brif.iterdir()} if brif.exists() else set()


def _dn_chains(name: str) -> list[str]:
    rules = nettest.iptables_rules_mentioning(name, tables=["nat"])
    return [r.split("-j ")[1].split()[0] for r in rules if "-j CNI-DN-" in r]


def _chain_exists(chain: str) -> bool:
    return (
        subprocess.run(["iptables", "-t", "nat", "-S", chain], capture_output=True).returncode == 0
    )


def _echo_server(sock: socket.socket, count: int) -> threading.Thread:
    def serve() -> None:
        for _ in range(count):
            conn, _ = sock.accept()
            with conn:
                conn.sendall(b"pong:" + conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _ask(sock: socket.socket, text: bytes) -> bytes:
    with sock:
        sock.sendall(text)
        return sock.recv(100)


def test_two_pods_talk_and_host_port_reaches_pod_from_loopback(harness: Harness) -> None:
    net = harness.net
    pod_a, pod_b = harness.pod("pod-a"), harness.pod("pod-b")
    assert pod_a.net is not None and pod_b.net is not None
    host_port = 20000 + int(net.bridge[3:], 16) % 20000
    rt_a = harness.rt(
        "pod-a", pod_a, port_mappings=[PortMapping(host_port=host_port, container_port=8080)]
    )
    rt_b = harness.rt("pod-b", pod_b)
    for rt in (rt_a, rt_b):
        harness.cni.add_sync(
            harness.loopback, RuntimeConf(container_id=rt.container_id, netns=rt.netns, ifname="lo")
        )
    res_a = harness.cni.add_sync(harness.network, rt_a)
    res_b = harness.cni.add_sync(harness.bridge_only, rt_b)
    ip_a, ip_b = str(res_a.ips[0].ip), str(res_b.ips[0].ip)
    assert ip_a != ip_b and all(ip.gateway for ip in res_a.ips)
    harness.cni.check_sync(harness.bridge_only, rt_b)
    harness.cni.check_sync(
        harness.loopback, RuntimeConf(container_id="pod-b", netns=rt_b.netns, ifname="lo")
    )

    server = pod_a.net.socket()
    server.bind((ip_a, 8080))
    server.listen()
    thread = _echo_server(server, 2)
    # Pod B to pod A over the bridge.
    assert _ask(pod_b.net.connect(ip_a, 8080, timeout=5), b"from-b") == b"pong:from-b"
    # The host's loopback to the pod through portmap's hostPort DNAT.
    assert (
        _ask(socket.create_connection(("127.0.0.1", host_port), timeout=5), b"host") == b"pong:host"
    )
    thread.join(timeout=5)
    server.close()

    veth = _host_veth(res_a, net.bridge)
    alloc = harness.ipam_dir / net.name / ip_a
    chains = _dn_chains(net.name)
    assert nettest.link_exists(veth) and alloc.exists() and chains
    assert veth in _bridge_ports(net.bridge)
    assert all(_chain_exists(c) for c in chains)

    harness.cni.delete_sync(harness.network, rt_a)
    assert not nettest.link_exists(veth)
    assert not alloc.exists()
    assert nettest.iptables_rules_mentioning(net.name) == []
    assert not any(_chain_exists(c) for c in chains)
    assert harness.cni.cached_result(harness.network, rt_a) is None
    harness.cni.delete_sync(harness.network, rt_a)  # idempotent
    # Pod B is unaffected, until its own DEL.
    assert (harness.ipam_dir / net.name / ip_b).exists()
    harness.cni.delete_sync(harness.bridge_only, rt_b)
    assert not (harness.ipam_dir / net.name / ip_b).exists()


def test_a_new_process_deletes_from_the_cache(harness: Harness) -> None:
    net = harness.net
    pod = harness.pod("pod-r")
    host_port = 20000 + (int(net.bridge[3:], 16) + 1) % 20000
    pods = PodNetwork(
        conf_dir=harness.conf_dir, plugin_dirs=PLUGIN_DIRS, cache_dir=harness.cache_dir
    )
    assert pods.readiness.ready
    result = pods.setup_sync(
        container_id="pod-r",
        netns=_netns(pod),
        pod=PodRef(namespace="default", name="pod-r"),
        port_mappings=[PortMapping(host_port=host_port, container_port=80)],
    )
    ip = str(result.ips[0].ip)
    veth = _host_veth(result, net.bridge)
    assert nettest.iptables_rules_mentioning(net.name)

    # The "restarted daemon" knows only the container id; the cache supplies the rest.
    script = (
        "from ocinet import PodNetwork\n"
        f"pods = PodNetwork(conf_dir={str(harness.conf_dir)!r}, plugin_dirs={PLUGIN_DIRS!r},"
        f" cache_dir={str(harness.cache_dir)!r})\n"
        "pods.teardown_sync(container_id='pod-r')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert not nettest.link_exists(veth)
    assert not (harness.ipam_dir / net.name / ip).exists()
    assert nettest.iptables_rules_mentioning(net.name) == []
    assert pods.cni.cached_attachments() == []
    pods.teardown_sync(container_id="pod-r")


def test_failed_add_is_cleaned_up_and_del_stays_idempotent(harness: Harness) -> None:
    net = harness.net
    pod = harness.pod("pod-f")
    pods = PodNetwork(
        conf_dir=harness.conf_dir, plugin_dirs=PLUGIN_DIRS, cache_dir=harness.cache_dir
    )
    ports_before = _bridge_ports(net.bridge)
    with pytest.raises(CNIError) as info:
        # portmap rejects port 0 after bridge has already set up the veth and the IP.
        pods.setup_sync(
            container_id="pod-f",
            netns=_netns(pod),
            port_mappings=[PortMapping(host_port=0, container_port=80)],
        )
    assert info.value.plugin == "portmap"
    # The veth bridge made was removed again (other sessions' veths are not our concern).
    assert _bridge_ports(net.bridge) == ports_before
    # ...and from inside the pod too.
    assert pod.net is not None
    inside = pod.net.exec_sync(["ip", "-o", "link"], check=True).stdout.decode()
    assert "eth0" not in inside
    leases = [p.name for p in (harness.ipam_dir / net.name).iterdir() if p.name[0].isdigit()]
    assert leases == []
    pods.teardown_sync(container_id="pod-f", netns=_netns(pod))
    pods.teardown_sync(container_id="pod-f")
