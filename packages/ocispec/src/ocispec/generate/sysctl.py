"""Sysctls a container may set: only namespaced ones, safe unless explicitly allowed.

A sysctl is *namespaced* when the kernel keeps it per namespace: the IPC ones
(``kernel.shm*``, ``kernel.msg*``, ``kernel.sem``, ``fs.mqueue.*``) need a private IPC
namespace and the network ones (``net.*``) a private network namespace. Everything else
is node-wide and always refused. Among namespaced sysctls, Kubernetes' *safe* set is
allowed; others (*unsafe*) only when they match a pattern of ``allowed_unsafe``
(``"net.core.*"``), as the kubelet's ``--allowed-unsafe-sysctls``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

from ocispec.errors import SysctlError

__all__ = ["SAFE_SYSCTLS", "normalize_sysctl_name", "validate_sysctls"]

#: Kubernetes' safe sysctls.
SAFE_SYSCTLS: frozenset[str] = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ping_group_range",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.tcp_wmem",
    }
)

_IPC_EXACT = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shm_rmid_forced",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
    }
)


def normalize_sysctl_name(name: str) -> str:
    """``net/ipv4/conf/eth0.100/forwarding`` -> ``net.ipv4.conf.eth0/100.forwarding``.

    Kubernetes accepts both separators; with ``/`` the roles of ``.`` and ``/`` swap.
    """
    name = name.strip()
    for ch in name:
        if ch == "/":
            return name.translate(str.maketrans("./", "/."))
        if ch == ".":
            break
    return name


def _namespace_of(name: str) -> str | None:
    if name in _IPC_EXACT or name.startswith("fs.mqueue."):
        return "ipc"
    if name.startswith("net."):
        return "network"
    return None


def validate_sysctls(
    sysctls: Mapping[str, str],
    *,
    private_network: bool,
    private_ipc: bool,
    allowed_unsafe: Sequence[str] = (),
) -> dict[str, str]:
    """The sysctls to write (names normalized), or :class:`SysctlError` for the first bad one."""
    out: dict[str, str] = {}
    for raw, value in sysctls.items():
        name = normalize_sysctl_name(raw)
        if not name or any(not part for part in name.split(".")):
            raise SysctlError(f"invalid sysctl name {raw!r}")
        if name in ("kernel.hostname", "kernel.domainname"):
            raise SysctlError(f"sysctl {name} is not allowed: set the hostname/domainname instead")
        ns = _namespace_of(name)
        if ns is None:
            raise SysctlError(f"sysctl {name} is not namespaced: it would change the whole node")
        if ns == "network" and not private_network:
            raise SysctlError(f"sysctl {name} needs a private network namespace, not the host's")
        if ns == "ipc" and not private_ipc:
            raise SysctlError(f"sysctl {name} needs a private IPC namespace, not the host's")
        if name not in SAFE_SYSCTLS and not any(
            fnmatch.fnmatchcase(name, p) for p in allowed_unsafe
        ):
            raise SysctlError(
                f"sysctl {name} is unsafe and not in the allowed unsafe sysctls "
                f"({', '.join(allowed_unsafe) or 'none'})"
            )
        if not isinstance(value, str):
            raise SysctlError(f"sysctl {name}: value must be a string")
        out[name] = value
    return out
