"""Sysctls a pod may set: every namespaced one, none that would reach the host.

A sysctl is *namespaced* when the kernel keeps it per namespace: the IPC ones
(``kernel.shm*``, ``kernel.msg*``, ``kernel.sem``, ``fs.mqueue.*``) live in the IPC
namespace, ``net.*`` in the network namespace, ``kernel.domainname`` in the UTS
namespace. Everything else is node-wide and always refused, and so is a namespaced one
whose namespace is the host's (``net.*`` with host network...). Which namespaced
sysctls a pod may ask for at all (Kubernetes' *safe* set, ``--allowed-unsafe-sysctls``)
is the kubelet's decision, made before the request reaches the runtime: nothing here
second-guesses it.

Names come in two spellings, as sysctl(8) and the kubelet accept: with ``.`` between
the levels (``net.ipv4.conf.eth0/100.forwarding``: a ``/`` is a ``.`` inside one level,
here the interface ``eth0.100``), or, when the first separator is ``/``, with ``/``
between levels and ``.`` inside one (``net/ipv4/conf/eth0.100/forwarding``).
:func:`normalize_sysctl_name` gives the first spelling, :func:`sysctl_path` the file
under ``/proc/sys``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ocispec.errors import SysctlError

__all__ = ["normalize_sysctl_name", "sysctl_namespace", "sysctl_path", "validate_sysctls"]

_SWAP = str.maketrans("./", "/.")
_IPC_PREFIXES = ("kernel.shm", "kernel.msg", "fs.mqueue.")
_UTS = frozenset({"kernel.domainname", "kernel.hostname"})


def normalize_sysctl_name(name: str) -> str:
    """``net/ipv4/conf/eth0.100/forwarding`` -> ``net.ipv4.conf.eth0/100.forwarding``.

    With ``/`` as the first separator the roles of ``.`` and ``/`` swap.
    """
    name = name.strip()
    for ch in name:
        if ch == "/":
            return name.translate(_SWAP)
        if ch == ".":
            break
    return name


def sysctl_path(name: str) -> str:
    """The file under ``/proc/sys`` of a normalized name (``net/ipv4/conf/eth0.100/forwarding``)."""
    return name.translate(_SWAP)


def sysctl_namespace(name: str) -> str | None:
    """``"ipc"``, ``"network"`` or ``"uts"`` for a namespaced sysctl (normalized), else None."""
    if name == "kernel.sem" or name.startswith(_IPC_PREFIXES):
        return "ipc"
    if name.startswith("net."):
        return "network"
    if name in _UTS:
        return "uts"
    return None


def _check_name(raw: str, name: str) -> None:
    levels = sysctl_path(name).split("/")
    if "\0" in name or any(level in ("", ".", "..") for level in levels):
        raise SysctlError(f"invalid sysctl name {raw!r}")


def validate_sysctls(
    sysctls: Mapping[str, str],
    *,
    private_network: bool,
    private_ipc: bool,
    private_uts: bool = False,
) -> dict[str, str]:
    """The sysctls to write (names normalized), or :class:`SysctlError` for the first bad one."""
    out: dict[str, str] = {}
    for raw, value in sysctls.items():
        name = normalize_sysctl_name(raw)
        _check_name(raw, name)
        if not isinstance(value, str):
            raise SysctlError(f"sysctl {name}: value must be a string")
        ns = sysctl_namespace(name)
        if ns is None:
            raise SysctlError(f"sysctl {name} is not namespaced: it would change the whole node")
        if ns == "network" and not private_network:
            raise SysctlError(
                f"sysctl {name} would change the host's network namespace (host network)"
            )
        if ns == "ipc" and not private_ipc:
            raise SysctlError(f"sysctl {name} would change the host's IPC namespace (host IPC)")
        if ns == "uts" and not private_uts:
            raise SysctlError(f"sysctl {name} would change the host's UTS namespace (host UTS)")
        if name == "kernel.hostname":
            raise SysctlError("sysctl kernel.hostname is not allowed: set the pod's hostname")
        out[name] = value
    return out
