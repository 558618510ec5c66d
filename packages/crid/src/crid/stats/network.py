"""A pod's network counters, read from ``/proc/<pid>/net/dev`` of one of its processes.

``/proc/<pid>/net/dev`` shows the interfaces of that process's network namespace, so a
running container's pid gives the pod's counters without entering the namespace. The pid
is only trusted when its namespace is the pod's pinned one (same nsfs inode), so a
reused pid never reports another namespace. Loopback is left out, as the kubelet does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["InterfaceUsage", "NetworkUsage", "parse_net_dev", "read_pod_network"]


@dataclass(frozen=True, kw_only=True)
class InterfaceUsage:
    """Cumulative counters of one interface."""

    name: str
    rx_bytes: int
    rx_errors: int
    tx_bytes: int
    tx_errors: int
    rx_packets: int = 0
    rx_dropped: int = 0
    tx_packets: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True, kw_only=True)
class NetworkUsage:
    """Every non-loopback interface of the pod; ``default`` names eth0 (else the first)."""

    timestamp_ns: int
    interfaces: tuple[InterfaceUsage, ...]
    default: str = ""


def parse_net_dev(text: str) -> list[InterfaceUsage]:
    """The interfaces of a ``/proc/net/dev`` text, loopback excluded."""
    found = []
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        fields = counters.split()
        name = name.strip()
        if len(fields) < 16 or name == "lo":
            continue
        found.append(
            InterfaceUsage(
                name=name,
                rx_bytes=int(fields[0]),
                rx_errors=int(fields[2]),
                tx_bytes=int(fields[8]),
                tx_errors=int(fields[10]),
                rx_packets=int(fields[1]),
                rx_dropped=int(fields[3]),
                tx_packets=int(fields[9]),
                tx_dropped=int(fields[11]),
            )
        )
    return found


def _inode(path: str) -> int | None:
    try:
        return Path(path).stat().st_ino
    except OSError:
        return None


def read_pod_network(netns_path: str, pids: Iterable[int]) -> NetworkUsage | None:
    """Counters of the namespace pinned at ``netns_path``, through one of ``pids``."""
    wanted = _inode(netns_path)
    if wanted is None:
        return None
    for pid in pids:
        if pid <= 0 or _inode(f"/proc/{pid}/ns/net") != wanted:
            continue
        try:
            text = Path(f"/proc/{pid}/net/dev").read_text()
        except OSError:
            continue
        interfaces = tuple(parse_net_dev(text))
        names = [i.name for i in interfaces]
        default = "eth0" if "eth0" in names else (names[0] if names else "")
        return NetworkUsage(timestamp_ns=time.time_ns(), interfaces=interfaces, default=default)
    return None
