"""Linux capabilities: names, CRI-O's default set, add/drop with ``ALL``, a process's own sets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ocispec.errors import InvalidArgumentError

__all__ = [
    "ALL_CAPABILITIES",
    "DEFAULT_CAPABILITIES",
    "capabilities_from_mask",
    "capability_mask",
    "compute_capabilities",
    "normalize_capability",
    "process_capabilities",
]

#: Every capability Linux defines, by number (index = capability number).
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

#: The default capability set of CRI-O (and so of crid's containers).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_KILL",
)

_KNOWN = frozenset(ALL_CAPABILITIES)


def normalize_capability(name: str) -> str:
    """``chown``, ``CHOWN`` or ``CAP_CHOWN`` -> ``CAP_CHOWN``; InvalidArgumentError if unknown."""
    upper = name.strip().upper()
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in _KNOWN:
        raise InvalidArgumentError(f"unknown capability {name!r}")
    return full


def capability_mask(caps: Iterable[str]) -> int:
    """The bit mask of ``caps`` as /proc/<pid>/status prints it (``CapEff``)."""
    mask = 0
    for cap in caps:
        mask |= 1 << ALL_CAPABILITIES.index(normalize_capability(cap))
    return mask


def capabilities_from_mask(mask: int) -> tuple[str, ...]:
    """The capability names set in ``mask`` (bits beyond the known ones are ignored)."""
    return tuple(cap for i, cap in enumerate(ALL_CAPABILITIES) if mask >> i & 1)


def process_capabilities(which: str = "CapBnd", pid: int | str = "self") -> tuple[str, ...]:
    """A capability set of a process from /proc (``CapBnd``, ``CapEff``, ``CapPrm``...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == which:
            return capabilities_from_mask(int(value.strip(), 16))
    raise InvalidArgumentError(f"no {which} line in /proc/{pid}/status")


def compute_capabilities(
    *,
    add: Sequence[str] = (),
    drop: Sequence[str] = (),
    default: Sequence[str] = DEFAULT_CAPABILITIES,
    available: Sequence[str] = ALL_CAPABILITIES,
) -> tuple[str, ...]:
    """The capability set after CRI's add/drop lists, in kernel order.

    As CRI-O and containerd do: ``ALL`` in ``add`` starts from every ``available``
    capability, then ``ALL`` in ``drop`` clears the set; then the named additions are
    added and the named drops removed (so ``add=[ALL], drop=[CHOWN]`` is all but CHOWN
    and ``drop=[ALL], add=[NET_RAW]`` is only NET_RAW). Additions outside ``available``
    (the runtime's own bounding set) are an error.
    """
    avail = {normalize_capability(c) for c in available}
    caps = {normalize_capability(c) for c in default} & avail
    add_all = any(c.strip().upper() == "ALL" for c in add)
    drop_all = any(c.strip().upper() == "ALL" for c in drop)
    if add_all:
        caps |= avail
    if drop_all:
        caps.clear()
    for name in add:
        if name.strip().upper() == "ALL":
            continue
        cap = normalize_capability(name)
        if cap not in avail:
            raise InvalidArgumentError(
                f"capability {cap} cannot be granted: it is not in the runtime's bounding set"
            )
        caps.add(cap)
    for name in drop:
        if name.strip().upper() == "ALL":
            continue
        caps.discard(normalize_capability(name))
    return tuple(c for c in ALL_CAPABILITIES if c in caps)
