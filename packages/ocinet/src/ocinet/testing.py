"""Helpers for tests and benchmarks that drive real CNI plugins on a shared host.

They make collisions with other users of the machine unlikely (random bridge names and
10.x test subnets that no route covers yet) and clean up what plugins leave behind: the
bridge (bridge DEL keeps it) and portmap's per-container iptables chains.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shlex
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "bridge_network",
    "delete_link",
    "iptables_rules_mentioning",
    "link_exists",
    "random_bridge_name",
    "random_test_subnet",
    "remove_iptables_rules_mentioning",
]


def random_bridge_name(prefix: str = "crt") -> str:
    """A bridge name unlikely to exist, within the kernel's 15-character limit."""
    name = prefix + secrets.token_hex(4)
    if len(name) > 15:
        raise ValueError(f"bridge name {name!r} is longer than 15 characters")
    return name


def _routed_networks() -> list[ipaddress.IPv4Network]:
    nets: list[ipaddress.IPv4Network] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return nets
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, "little"))
        if int(mask) == 0:
            continue  # the default route overlaps everything; ignore it
        nets.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return nets


def random_test_subnet(prefixlen: int = 24, attempts: int = 64) -> ipaddress.IPv4Network:
    """A random subnet of 10.128.0.0/9 that no existing route overlaps."""
    taken = _routed_networks()
    pool = ipaddress.IPv4Network("10.128.0.0/9")
    count = 2 ** (prefixlen - pool.prefixlen)
    for _ in range(attempts):
        index = secrets.randbelow(count)
        base = int(pool.network_address) + index * 2 ** (32 - prefixlen)
        subnet = ipaddress.IPv4Network((base, prefixlen))
        if not any(subnet.overlaps(net) for net in taken):
            return subnet
    raise RuntimeError("no free 10.x test subnet found")


def bridge_network(
    *,
    name: str,
    bridge: str,
    subnet: ipaddress.IPv4Network | str,
    data_dir: str | os.PathLike[str],
    cni_version: str = "1.0.0",
    portmap: bool = True,
    loopback: bool = False,
) -> dict[str, Any]:
    """A network list for tests: bridge + host-local (+ portmap), never masquerading."""
    plugins: list[dict[str, Any]] = [
        {
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": str(subnet)}]],
                "dataDir": os.fspath(data_dir),
            },
        }
    ]
    if portmap:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}, "snat": True})
    if loopback:
        plugins.insert(0, {"type": "loopback"})
    return {"cniVersion": cni_version, "name": name, "plugins": plugins}


def link_exists(name: str) -> bool:
    """Whether a network interface ``name`` exists in this network namespace."""
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> None:
    """Delete a link (e.g. a test bridge) if it exists."""
    if link_exists(name):
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def _save(table: str) -> list[str]:
    proc = subprocess.run(
        ["iptables-save", "-t", table], check=False, capture_output=True, text=True
    )
    return proc.stdout.splitlines()


def iptables_rules_mentioning(text: str, tables: Iterable[str] = ("nat", "filter")) -> list[str]:
    """The ``iptables-save`` lines (rules and chains) of ``tables`` that contain ``text``."""
    return [line for table in tables for line in _save(table) if text in line]


def remove_iptables_rules_mentioning(text: str, tables: Iterable[str] = ("nat", "filter")) -> None:
    """Delete every rule containing ``text`` and the chains those rules jump to.

    Used in teardown for portmap's per-container ``CNI-DN-*`` chains, whose jump rules
    carry the network name and container id in a comment.
    """
    for table in tables:
        targets: set[str] = set()
        for line in _save(table):
            if not line.startswith("-A ") or text not in line:
                continue
            args = line.split()
            if "-j" in args:
                target = args[args.index("-j") + 1]
                # Shared CNI-HOSTPORT-* chains serve every portmap user on the host.
                if target.startswith("CNI-") and not target.startswith("CNI-HOSTPORT-"):
                    targets.add(target)
            # iptables-save quotes comments; shlex keeps each one a single argument.
            delete = ["iptables", "-t", table, "-D", *shlex.split(line)[1:]]
            subprocess.run(delete, check=False, capture_output=True)
        for chain in targets:
            subprocess.run(["iptables", "-t", table, "-F", chain], check=False, capture_output=True)
            subprocess.run(["iptables", "-t", table, "-X", chain], check=False, capture_output=True)
