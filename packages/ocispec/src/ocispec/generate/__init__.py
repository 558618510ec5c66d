"""Generating complete Linux container configs, the way a production runtime does.

The entry point is :func:`generate`: give it :class:`ContainerOptions` (rootfs, image
config, command, user, mounts, resources, security, namespaces...) and it returns a
:class:`GeneratedSpec` whose ``spec`` is a schema-valid :class:`ocispec.runtime.Spec`.
The building blocks are public too: user resolution, command and environment rules,
capabilities, seccomp translation, sysctl checks, mount and resource conversion.
"""

from __future__ import annotations

from ocispec.generate.builder import (
    ContainerOptions,
    DeviceMapping,
    GeneratedSpec,
    HostInfo,
    SecurityOptions,
    generate,
)
from ocispec.generate.capabilities import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    capabilities_from_mask,
    capability_mask,
    compute_capabilities,
    normalize_capability,
    process_capabilities,
)
from ocispec.generate.controllers import CgroupControllers, restrict_resources
from ocispec.generate.defaults import (
    DEFAULT_DEVICE_CGROUP_RULES,
    DEFAULT_DEVICES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    DEFAULT_RLIMITS,
    DEFAULT_SHM_SIZE,
    default_mounts,
)
from ocispec.generate.mounts import (
    BindMount,
    ImageVolumeMode,
    MountPropagation,
    TmpfsMount,
    build_mounts,
    image_volume_mounts,
)
from ocispec.generate.namespaces import (
    NamespaceMode,
    NamespaceOption,
    NamespaceOptions,
    UserNamespace,
    build_namespaces,
)
from ocispec.generate.process import DEFAULT_PATH, merge_env, parse_signal, resolve_command
from ocispec.generate.resources import (
    ResourceOptions,
    blkio_weight_to_io_weight,
    build_resources,
    cpu_shares_to_weight,
    cpu_weight_to_shares,
    current_oom_score_adj,
    detect_cgroup_version,
    io_weight_to_blkio_weight,
    memory_swap_to_v2,
    restrict_oom_score_adj,
)
from ocispec.generate.seccomp import (
    BUILTIN_PROFILE,
    CONTAINERS_DEFAULT_PROFILE,
    SeccompOptions,
    SeccompProfileType,
    go_arch,
    harden,
    load_profile,
    runtime_default,
    seccomp_for,
    translate_profile,
)
from ocispec.generate.sysctl import (
    normalize_sysctl_name,
    sysctl_namespace,
    sysctl_path,
    validate_sysctls,
)
from ocispec.generate.user import (
    GroupEntry,
    PasswdEntry,
    ResolvedUser,
    SupplementalGroupsPolicy,
    parse_group,
    parse_passwd,
    resolve_user,
)

__all__ = [
    "ALL_CAPABILITIES",
    "BUILTIN_PROFILE",
    "CONTAINERS_DEFAULT_PROFILE",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_DEVICES",
    "DEFAULT_DEVICE_CGROUP_RULES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_PATH",
    "DEFAULT_READONLY_PATHS",
    "DEFAULT_RLIMITS",
    "DEFAULT_SHM_SIZE",
    "BindMount",
    "CgroupControllers",
    "ContainerOptions",
    "DeviceMapping",
    "GeneratedSpec",
    "GroupEntry",
    "HostInfo",
    "ImageVolumeMode",
    "MountPropagation",
    "NamespaceMode",
    "NamespaceOption",
    "NamespaceOptions",
    "PasswdEntry",
    "ResolvedUser",
    "ResourceOptions",
    "SeccompOptions",
    "SeccompProfileType",
    "SecurityOptions",
    "SupplementalGroupsPolicy",
    "TmpfsMount",
    "UserNamespace",
    "blkio_weight_to_io_weight",
    "build_mounts",
    "build_namespaces",
    "build_resources",
    "capabilities_from_mask",
    "capability_mask",
    "compute_capabilities",
    "cpu_shares_to_weight",
    "cpu_weight_to_shares",
    "current_oom_score_adj",
    "default_mounts",
    "detect_cgroup_version",
    "generate",
    "go_arch",
    "harden",
    "image_volume_mounts",
    "io_weight_to_blkio_weight",
    "load_profile",
    "memory_swap_to_v2",
    "merge_env",
    "normalize_capability",
    "normalize_sysctl_name",
    "parse_group",
    "parse_passwd",
    "parse_signal",
    "process_capabilities",
    "resolve_command",
    "resolve_user",
    "restrict_oom_score_adj",
    "restrict_resources",
    "runtime_default",
    "seccomp_for",
    "sysctl_namespace",
    "sysctl_path",
    "translate_profile",
    "validate_sysctls",
]
