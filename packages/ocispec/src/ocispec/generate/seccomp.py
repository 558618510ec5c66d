"""Seccomp: the RuntimeDefault profile, Localhost profiles, and translation to ``linux.seccomp``.

Profiles come in the containers/Docker format (``archMap``, per-rule ``includes`` and
``excludes`` by capability, architecture and minimum kernel, ``name`` or ``names``,
``errnoRet`` or ``errno``) or already in the OCI format; :func:`translate_profile` reads
both and keeps the rules that apply to the host architecture, kernel and the container's
capabilities, exactly as containers/common (CRI-O, Podman) does.

**RuntimeDefault** is the containers-common profile (``/usr/share/containers/seccomp.json``,
Debian's ``golang-github-containers-common``) or, when that file is absent, the
project's built-in profile (:data:`BUILTIN_PROFILE`). On top of either, unless
``harden=False``, the restrictions Docker's default profile has and the containers-common
one dropped are applied (:func:`harden`): without CAP_SYS_ADMIN no mount, umount,
unshare, setns, pivot_root, new mount API, sethostname or quotactl, and no ``clone``
with namespace flags (``clone3`` answers ENOSYS so libc falls back to ``clone``); the
kernel keyring (keyctl, add_key, request_key), which is not namespaced, is never allowed;
reboot needs CAP_SYS_BOOT, syslog CAP_SYSLOG.
"""

from __future__ import annotations

import errno as _errno
import json
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ocispec.errors import SeccompProfileError
from ocispec.generate._builtin_seccomp import BUILTIN_PROFILE
from ocispec.runtime import Seccomp, SeccompAction, SeccompArg, SeccompOperator, Syscall

__all__ = [
    "BUILTIN_PROFILE",
    "CONTAINERS_DEFAULT_PROFILE",
    "SeccompOptions",
    "SeccompProfileType",
    "go_arch",
    "harden",
    "load_profile",
    "runtime_default",
    "seccomp_for",
    "translate_profile",
]

#: Where Debian's golang-github-containers-common installs the default profile.
CONTAINERS_DEFAULT_PROFILE = "/usr/share/containers/seccomp.json"

_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "loongarch64": "loong64",
}

_SCMP_ARCH = {
    "amd64": "SCMP_ARCH_X86_64",
    "386": "SCMP_ARCH_X86",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "mips64": "SCMP_ARCH_MIPS64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
}

_ACTIONS = frozenset(a.value for a in SeccompAction)
_OPERATORS = frozenset(o.value for o in SeccompOperator)


class SeccompProfileType(StrEnum):
    """Kubernetes' seccomp profile types."""

    RUNTIME_DEFAULT = "RuntimeDefault"
    UNCONFINED = "Unconfined"
    LOCALHOST = "Localhost"


@dataclass(frozen=True, kw_only=True)
class SeccompOptions:
    """Which seccomp profile a container gets.

    ``localhost_path`` is the profile file for LOCALHOST (absolute, or relative to
    ``localhost_root``). ``default_profile_path`` is where RuntimeDefault is read from;
    when it does not exist the built-in profile is used.
    """

    type: SeccompProfileType = SeccompProfileType.RUNTIME_DEFAULT
    localhost_path: str = ""
    localhost_root: str = ""
    default_profile_path: str = CONTAINERS_DEFAULT_PROFILE
    harden: bool = True


def go_arch(machine: str | None = None) -> str:
    """Go's name for an architecture (``x86_64`` -> ``amd64``), the names profiles use."""
    m = (machine or platform.machine()).lower()
    return _GO_ARCH.get(m, m)


def _kernel_version(release: str) -> tuple[int, ...]:
    m = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", release)
    if not m:
        return (0,)
    return tuple(int(g) for g in m.groups() if g is not None)


def _kernel_at_least(kernel: str, minimum: str) -> bool:
    return _kernel_version(kernel) >= _kernel_version(minimum)


def _errno_value(rule: Mapping[str, Any], key_num: str, key_name: str, where: str) -> int | None:
    if rule.get(key_num) is not None:
        value = rule[key_num]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SeccompProfileError(f"{where}: {key_num} must be a non-negative integer")
        return value
    name = rule.get(key_name)
    if name:
        code = getattr(_errno, str(name), None)
        if not isinstance(code, int):
            raise SeccompProfileError(f"{where}: unknown errno {name!r}")
        return code
    return None


def _action(value: object, where: str) -> str:
    if value not in _ACTIONS:
        raise SeccompProfileError(f"{where}: unknown seccomp action {value!r}")
    return str(value)


def _args(raw: object, where: str) -> list[SeccompArg]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SeccompProfileError(f"{where}: args must be a list")
    out = []
    for i, a in enumerate(raw):
        if not isinstance(a, Mapping):
            raise SeccompProfileError(f"{where}.args[{i}]: must be an object")
        op = a.get("op")
        if op not in _OPERATORS:
            raise SeccompProfileError(f"{where}.args[{i}]: unknown operator {op!r}")
        try:
            index, value = int(a["index"]), int(a.get("value", 0))
            value_two = int(a.get("valueTwo", 0) or 0)
        except (KeyError, TypeError, ValueError) as err:
            raise SeccompProfileError(f"{where}.args[{i}]: bad index or value: {err}") from err
        if not 0 <= index <= 5:
            raise SeccompProfileError(f"{where}.args[{i}]: argument index {index} outside 0..5")
        out.append(SeccompArg(index=index, value=value, value_two=value_two, op=str(op)))
    return out


def _filter(raw: object, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SeccompProfileError(f"{where}: must be an object")
    return raw


def translate_profile(
    profile: Mapping[str, Any],
    *,
    capabilities: Iterable[str],
    arch: str | None = None,
    kernel: str | None = None,
) -> Seccomp:
    """Translate a containers/Docker-format (or OCI-format) profile to ``linux.seccomp``.

    ``capabilities`` is the container's bounding set, ``arch`` a Go architecture name
    (the host's by default), ``kernel`` a kernel release (the host's by default).
    """
    if not isinstance(profile, Mapping):
        raise SeccompProfileError("a seccomp profile must be a JSON object")
    caps = set(capabilities)
    arch = arch or go_arch()
    kernel = kernel or platform.release()
    default_action = _action(profile.get("defaultAction"), "defaultAction")
    default_errno = _errno_value(profile, "defaultErrnoRet", "defaultErrno", "profile")

    architectures: list[str] = []
    arch_map = profile.get("archMap") or []
    plain_arches = profile.get("architectures") or []
    if arch_map and plain_arches:
        raise SeccompProfileError("a profile may have 'architectures' or 'archMap', not both")
    if plain_arches:
        architectures = [str(a) for a in plain_arches]
    native = _SCMP_ARCH.get(arch)
    for entry in arch_map:
        if not isinstance(entry, Mapping):
            raise SeccompProfileError("archMap entries must be objects")
        if entry.get("architecture") == native:
            architectures.append(str(entry["architecture"]))
            architectures.extend(str(s) for s in entry.get("subArchitectures") or [])

    rules: list[Syscall] = []
    for i, rule in enumerate(profile.get("syscalls") or []):
        where = f"syscalls[{i}]"
        if not isinstance(rule, Mapping):
            raise SeccompProfileError(f"{where}: must be an object")
        inc = _filter(rule.get("includes"), f"{where}.includes")
        exc = _filter(rule.get("excludes"), f"{where}.excludes")
        if exc.get("arches") and arch in exc["arches"]:
            continue
        if exc.get("caps") and any(c in caps for c in exc["caps"]):
            continue
        if exc.get("minKernel") and _kernel_at_least(kernel, str(exc["minKernel"])):
            continue
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if inc.get("caps") and not all(c in caps for c in inc["caps"]):
            continue
        if inc.get("minKernel") and not _kernel_at_least(kernel, str(inc["minKernel"])):
            continue
        names = [str(n) for n in (rule.get("names") or [])]
        if rule.get("name"):
            names.insert(0, str(rule["name"]))
        if not names:
            raise SeccompProfileError(f"{where}: a rule needs 'name' or 'names'")
        rules.append(
            Syscall(
                names=names,
                action=_action(rule.get("action"), where),
                errno_ret=_errno_value(rule, "errnoRet", "errno", where),
                args=_args(rule.get("args"), where),
            )
        )
    return Seccomp(
        default_action=default_action,
        default_errno_ret=default_errno,
        architectures=architectures,
        flags=[str(f) for f in profile.get("flags") or []],
        listener_path=str(profile.get("listenerPath") or ""),
        listener_metadata=str(profile.get("listenerMetadata") or ""),
        syscalls=_resolve_conflicts(rules),
    )


def _resolve_conflicts(rules: Sequence[Syscall]) -> list[Syscall]:
    """Drop a name from an unconditional ALLOW rule when another unconditional rule denies it.

    containers-common allows ``setns`` in its big list and denies it again without
    CAP_SYS_ADMIN; libseccomp would keep only one of two unconditional rules for a
    syscall, so the restrictive one is made to win explicitly.
    """
    denied = {n for r in rules if not r.args and r.action != SeccompAction.ALLOW for n in r.names}
    out = []
    for r in rules:
        if r.action == SeccompAction.ALLOW and not r.args and denied.intersection(r.names):
            names = [n for n in r.names if n not in denied]
            if not names:
                continue
            r = r.replace(names=names)
        out.append(r)
    return out


_EPERM = _errno.EPERM
_ENOSYS = _errno.ENOSYS

_CLONE_NS_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
    | 0x02000000  # CLONE_NEWCGROUP
)

#: Syscalls that need a capability in hardened profiles (Docker's default profile).
_GATED: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "fsconfig",
        "fsmount",
        "fsopen",
        "fspick",
        "mount",
        "mount_setattr",
        "move_mount",
        "open_tree",
        "pivot_root",
        "quotactl",
        "quotactl_fd",
        "setdomainname",
        "sethostname",
        "setns",
        "umount",
        "umount2",
        "unshare",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYSLOG": ("syslog",),
}

#: Syscalls no hardened profile allows: the kernel keyring is not namespaced.
_ALWAYS_DENIED = ("add_key", "keyctl", "request_key", "kexec_file_load", "kexec_load")


def harden(seccomp: Seccomp, *, capabilities: Iterable[str], arch: str | None = None) -> Seccomp:
    """Apply Docker's restrictions to a translated profile (see the module docs)."""
    caps = set(capabilities)
    deny = set(_ALWAYS_DENIED)
    for cap, gated in _GATED.items():
        if cap not in caps:
            deny.update(gated)
    restrict_clone = "CAP_SYS_ADMIN" not in caps
    removed = set(deny)
    if restrict_clone:
        removed |= {"clone", "clone3"}
    rules: list[Syscall] = []
    for r in seccomp.syscalls:
        if r.action == SeccompAction.ALLOW and removed.intersection(r.names):
            names = [n for n in r.names if n not in removed]
            if not names:
                continue
            r = r.replace(names=names)
        rules.append(r)
    already = {n for r in rules if not r.args and r.action == SeccompAction.ERRNO for n in r.names}
    if deny - already:
        rules.append(
            Syscall(names=sorted(deny - already), action=SeccompAction.ERRNO, errno_ret=_EPERM)
        )
    if restrict_clone:
        index = 1 if (arch or go_arch()) in ("s390x", "s390") else 0
        rules.append(
            Syscall(
                names=["clone"],
                action=SeccompAction.ALLOW,
                args=[
                    SeccompArg(
                        index=index,
                        value=_CLONE_NS_FLAGS,
                        value_two=0,
                        op=SeccompOperator.MASKED_EQ,
                    )
                ],
            )
        )
        rules.append(Syscall(names=["clone3"], action=SeccompAction.ERRNO, errno_ret=_ENOSYS))
    return seccomp.replace(syscalls=_resolve_conflicts(rules))


def load_profile(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Read a profile file (either format); raises :class:`SeccompProfileError`."""
    try:
        text = Path(path).read_text("utf-8")
    except OSError as err:
        raise SeccompProfileError(
            f"cannot read seccomp profile {os.fspath(path)!r}: {err}"
        ) from err
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise SeccompProfileError(
            f"seccomp profile {os.fspath(path)!r} is not JSON: {err}"
        ) from err
    if not isinstance(doc, Mapping) or "defaultAction" not in doc:
        raise SeccompProfileError(
            f"seccomp profile {os.fspath(path)!r} has no defaultAction: not a seccomp profile"
        )
    return doc


def runtime_default(
    *,
    capabilities: Iterable[str],
    path: str | os.PathLike[str] | None = CONTAINERS_DEFAULT_PROFILE,
    harden_profile: bool = True,
    arch: str | None = None,
    kernel: str | None = None,
) -> Seccomp:
    """The RuntimeDefault ``linux.seccomp`` for a container with ``capabilities``.

    Reads the containers-common profile at ``path``, or uses :data:`BUILTIN_PROFILE`
    when ``path`` is None or does not exist.
    """
    caps = list(capabilities)
    use_file = path is not None and Path(path).exists()
    profile = load_profile(path) if use_file and path is not None else BUILTIN_PROFILE
    result = translate_profile(profile, capabilities=caps, arch=arch, kernel=kernel)
    return harden(result, capabilities=caps, arch=arch) if harden_profile else result


def seccomp_for(
    options: SeccompOptions,
    *,
    capabilities: Iterable[str],
    privileged: bool = False,
    arch: str | None = None,
    kernel: str | None = None,
) -> Seccomp | None:
    """The ``linux.seccomp`` section for ``options`` (None: unconfined).

    Privileged containers are always unconfined, even with a Localhost profile (as in
    CRI-O and the CRI conformance tests: privileged means no seccomp filter).
    """
    caps = list(capabilities)
    if privileged or options.type is SeccompProfileType.UNCONFINED:
        return None
    if options.type is SeccompProfileType.LOCALHOST:
        if not options.localhost_path:
            raise SeccompProfileError("a Localhost seccomp profile needs a path")
        path = Path(options.localhost_path)
        if not path.is_absolute():
            if not options.localhost_root:
                raise SeccompProfileError(f"Localhost seccomp profile path {path} is not absolute")
            path = Path(options.localhost_root, path)
        return translate_profile(load_profile(path), capabilities=caps, arch=arch, kernel=kernel)
    return runtime_default(
        capabilities=caps,
        path=options.default_profile_path or None,
        harden_profile=options.harden,
        arch=arch,
        kernel=kernel,
    )
