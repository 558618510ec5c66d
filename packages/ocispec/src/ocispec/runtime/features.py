"""What an OCI runtime supports: the runtime-spec ``features`` document (``runc features``).

:func:`parse_features` reads the JSON a runtime prints, :func:`read_features` runs the
runtime to get it. :class:`Features` answers questions such as "does it know this hook,
this mount option, this namespace, this seccomp action, this spec version?". A field a
runtime leaves out means *unknown*, so the predicates take a default for that case.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence

from ocispec._model import FrozenDict, JSONModel, jfield, model
from ocispec.errors import SpecError

__all__ = [
    "AppArmorFeatures",
    "CgroupFeatures",
    "Features",
    "IDMapFeatures",
    "IntelRdtFeatures",
    "LinuxFeatures",
    "MountExtensions",
    "NetDevicesFeatures",
    "SeccompFeatures",
    "SelinuxFeatures",
    "compare_versions",
    "parse_features",
    "read_features",
]


@model
class CgroupFeatures(JSONModel):
    """Cgroup managers the runtime implements (None: not reported)."""

    v1: bool | None = jfield("v1", default=None)
    v2: bool | None = jfield("v2", default=None)
    systemd: bool | None = jfield("systemd", default=None)
    systemd_user: bool | None = jfield("systemdUser", default=None)
    rdma: bool | None = jfield("rdma", default=None)


@model
class SeccompFeatures(JSONModel):
    """Seccomp support: actions, operators, architectures and filter flags."""

    enabled: bool | None = jfield("enabled", default=None)
    actions: Sequence[str] = jfield("actions", default=())
    operators: Sequence[str] = jfield("operators", default=())
    archs: Sequence[str] = jfield("archs", default=())
    known_flags: Sequence[str] = jfield("knownFlags", default=())
    supported_flags: Sequence[str] = jfield("supportedFlags", default=())


@model
class AppArmorFeatures(JSONModel):
    """Whether the runtime can apply AppArmor profiles."""

    enabled: bool | None = jfield("enabled", default=None)


@model
class SelinuxFeatures(JSONModel):
    """Whether the runtime can apply SELinux labels."""

    enabled: bool | None = jfield("enabled", default=None)


@model
class IntelRdtFeatures(JSONModel):
    """Whether the runtime supports Intel RDT."""

    enabled: bool | None = jfield("enabled", default=None)


@model
class IDMapFeatures(JSONModel):
    """Whether the runtime supports idmapped mounts."""

    enabled: bool | None = jfield("enabled", default=None)


@model
class MountExtensions(JSONModel):
    """Mount extensions (idmapped mounts)."""

    idmap: IDMapFeatures | None = jfield("idmap", default=None)


@model
class NetDevicesFeatures(JSONModel):
    """Whether the runtime can move network devices into the container."""

    enabled: bool | None = jfield("enabled", default=None)


@model
class LinuxFeatures(JSONModel):
    """The Linux part of the features document."""

    namespaces: Sequence[str] = jfield("namespaces", default=())
    capabilities: Sequence[str] = jfield("capabilities", default=())
    cgroup: CgroupFeatures | None = jfield("cgroup", default=None)
    seccomp: SeccompFeatures | None = jfield("seccomp", default=None)
    apparmor: AppArmorFeatures | None = jfield("apparmor", default=None)
    selinux: SelinuxFeatures | None = jfield("selinux", default=None)
    intel_rdt: IntelRdtFeatures | None = jfield("intelRdt", default=None)
    mount_extensions: MountExtensions | None = jfield("mountExtensions", default=None)
    net_devices: NetDevicesFeatures | None = jfield("netDevices", default=None)


_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$")


def compare_versions(a: str, b: str) -> int:
    """Compare two spec versions (semver, ``1.0.2-dev`` < ``1.0.2``): -1, 0 or 1."""

    def key(v: str) -> tuple[int, int, int, int, str]:
        m = _VERSION.match(v.strip())
        if not m:
            raise ValueError(f"not a spec version: {v!r}")
        pre = m.group(4) or ""
        return int(m.group(1)), int(m.group(2)), int(m.group(3)), 0 if pre else 1, pre

    ka, kb = key(a), key(b)
    return (ka > kb) - (ka < kb)


@model
class Features(JSONModel):
    """The runtime's features document."""

    oci_version_min: str = jfield("ociVersionMin", omitempty=False)
    oci_version_max: str = jfield("ociVersionMax", omitempty=False)
    hooks: Sequence[str] = jfield("hooks", default=())
    mount_options: Sequence[str] = jfield("mountOptions", default=())
    linux: LinuxFeatures | None = jfield("linux", default=None)
    annotations: Mapping[str, str] = jfield("annotations", default_factory=FrozenDict)
    potentially_unsafe_config_annotations: Sequence[str] = jfield(
        "potentiallyUnsafeConfigAnnotations", default=()
    )

    def supports_oci_version(self, version: str) -> bool:
        """Whether ``version`` lies within [ociVersionMin, ociVersionMax].

        A development max such as ``1.0.2-dev`` also admits every ``1.0.x``.
        """
        if compare_versions(version, self.oci_version_min) < 0:
            return False
        top = self.oci_version_max.split("-", 1)[0]
        if "-" in self.oci_version_max:
            major_minor = ".".join(top.split(".")[:2])
            return ".".join(version.split(".")[:2]) == major_minor or (
                compare_versions(version, top) <= 0
            )
        return compare_versions(version, self.oci_version_max) <= 0

    def supports_hook(self, name: str, *, unknown: bool = True) -> bool:
        """Whether the runtime runs hooks of this kind (``createRuntime``...)."""
        return name in self.hooks if self.hooks else unknown

    def supports_mount_option(self, option: str, *, unknown: bool = True) -> bool:
        """Whether the runtime knows this mount option (``rro``, ``idmap``...)."""
        return option in self.mount_options if self.mount_options else unknown

    def supports_namespace(self, kind: str, *, unknown: bool = True) -> bool:
        """Whether the runtime can create or join namespaces of this kind."""
        if self.linux is None or not self.linux.namespaces:
            return unknown
        return kind in self.linux.namespaces

    def supports_capability(self, cap: str, *, unknown: bool = True) -> bool:
        """Whether the runtime knows this capability (``CAP_BPF``...)."""
        if self.linux is None or not self.linux.capabilities:
            return unknown
        name = cap.upper() if cap.upper().startswith("CAP_") else f"CAP_{cap.upper()}"
        return name in self.linux.capabilities

    def supports_seccomp(self, *, unknown: bool = True) -> bool:
        """Whether the runtime was built with seccomp support."""
        sc = self.linux.seccomp if self.linux else None
        if sc is None or sc.enabled is None:
            return unknown
        return sc.enabled

    def supports_seccomp_action(self, action: str, *, unknown: bool = True) -> bool:
        """Whether the runtime's seccomp knows this action (``SCMP_ACT_NOTIFY``...)."""
        sc = self.linux.seccomp if self.linux else None
        if sc is None or not sc.actions:
            return unknown
        return action in sc.actions

    def supports_seccomp_flag(self, flag: str, *, unknown: bool = False) -> bool:
        """Whether a seccomp filter flag is supported (not merely known) by the runtime."""
        sc = self.linux.seccomp if self.linux else None
        if sc is None or not (sc.supported_flags or sc.known_flags):
            return unknown
        return flag in sc.supported_flags

    def supports_idmapped_mounts(self, *, unknown: bool = False) -> bool:
        """Whether the runtime supports idmapped mounts (``uidMappings`` on a mount)."""
        ext = self.linux.mount_extensions if self.linux else None
        if ext is None or ext.idmap is None or ext.idmap.enabled is None:
            return unknown
        return ext.idmap.enabled


def parse_features(data: str | bytes | Mapping[str, object]) -> Features:
    """Parse the features JSON a runtime prints; raises :class:`DecodeError`."""
    if isinstance(data, Mapping):
        return Features.from_dict(data)
    return Features.from_json(data)


def read_features(runtime: str = "runc", *, timeout: float = 10.0) -> Features:
    """Run ``<runtime> features`` and parse its output.

    Raises :class:`SpecError` if the runtime cannot be run or fails, :class:`DecodeError`
    if its output is not a features document.
    """
    try:
        out = subprocess.run(
            [runtime, "features"],
            capture_output=True,
            timeout=timeout,
            check=False,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SpecError(f"cannot run {runtime!r} features: {err}") from err
    if out.returncode != 0:
        msg = out.stderr.decode("utf-8", "replace").strip()
        raise SpecError(f"{runtime!r} features failed (exit {out.returncode}): {msg}")
    return parse_features(out.stdout)
