"""The config generator: high-level container options in, a complete runtime :class:`Spec` out.

:func:`generate` does what a production runtime does when it creates a container: the
default namespaces, mounts, masked and read-only paths, capabilities, rlimits, devices and
device cgroup; then the image config (command, environment, working directory, user,
stop signal) under the caller's overrides; user and group resolution inside the rootfs;
mounts, resources, security settings and namespace modes. The result always validates
against the runtime-spec schema.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ocispec.errors import InvalidArgumentError, RunAsNonRootError
from ocispec.generate import capabilities as capmod
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
    TmpfsMount,
    build_mounts,
    image_volume_mounts,
)
from ocispec.generate.namespaces import NamespaceMode, NamespaceOptions, build_namespaces
from ocispec.generate.process import DEFAULT_PATH, merge_env, parse_signal, resolve_command
from ocispec.generate.resources import (
    ResourceOptions,
    build_resources,
    current_oom_score_adj,
    detect_cgroup_version,
    restrict_oom_score_adj,
)
from ocispec.generate.seccomp import SeccompOptions, go_arch, seccomp_for
from ocispec.generate.sysctl import validate_sysctls
from ocispec.generate.user import ResolvedUser, SupplementalGroupsPolicy, resolve_user
from ocispec.image import ExecutionConfig, ImageConfig
from ocispec.runtime import (
    Capabilities,
    Device,
    DeviceCgroup,
    Hooks,
    Linux,
    Mount,
    Process,
    Rlimit,
    Root,
    Spec,
    User,
)
from ocispec.schema import Schema, validate

__all__ = [
    "ContainerOptions",
    "DeviceMapping",
    "GeneratedSpec",
    "HostInfo",
    "SecurityOptions",
    "generate",
]

_RLIMITS = {
    "RLIMIT_AS": resource.RLIMIT_AS,
    "RLIMIT_CORE": resource.RLIMIT_CORE,
    "RLIMIT_CPU": resource.RLIMIT_CPU,
    "RLIMIT_DATA": resource.RLIMIT_DATA,
    "RLIMIT_FSIZE": resource.RLIMIT_FSIZE,
    "RLIMIT_LOCKS": 10,  # not exported by Python's resource module
    "RLIMIT_MEMLOCK": resource.RLIMIT_MEMLOCK,
    "RLIMIT_MSGQUEUE": resource.RLIMIT_MSGQUEUE,
    "RLIMIT_NICE": resource.RLIMIT_NICE,
    "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC,
    "RLIMIT_RSS": resource.RLIMIT_RSS,
    "RLIMIT_RTPRIO": resource.RLIMIT_RTPRIO,
    "RLIMIT_RTTIME": resource.RLIMIT_RTTIME,
    "RLIMIT_SIGPENDING": resource.RLIMIT_SIGPENDING,
    "RLIMIT_STACK": resource.RLIMIT_STACK,
}
_UNLIMITED = 2**64 - 1


def _apparmor_enabled() -> bool:
    try:
        return Path("/sys/module/apparmor/parameters/enabled").read_text().strip() == "Y"
    except OSError:
        return False


@dataclass(frozen=True, kw_only=True)
class HostInfo:
    """What the generator needs to know about the host and the runtime's own process.

    :meth:`detect` reads it from this machine; tests and callers on other hosts pass
    their own.
    """

    #: Go architecture name (``amd64``).
    arch: str
    #: Kernel release (``6.1.0-18-amd64``).
    kernel: str
    #: 1 (legacy or hybrid) or 2 (unified).
    cgroup_version: int
    #: Capabilities the runtime may grant (its bounding set).
    bounding_capabilities: tuple[str, ...]
    #: Whether the runtime has CAP_SYS_RESOURCE (may lower OOM scores, raise rlimits).
    sys_resource: bool
    #: The runtime's own oom_score_adj, inherited by runc.
    oom_score_adj: int
    #: The runtime's hard rlimits by name (``RLIMIT_NOFILE``: 1048576; unlimited: 2**64-1).
    hard_rlimits: Mapping[str, int] = field(default_factory=dict)
    apparmor: bool = False
    #: The cgroup controllers containers can use; resources of others are left out
    #: (None: unknown, nothing is left out). :meth:`detect` leaves it to the caller.
    cgroup_controllers: CgroupControllers | None = None

    @classmethod
    def detect(cls) -> HostInfo:
        """Read the host's facts (architecture, kernel, cgroups, this process's limits)."""
        hard = {}
        for name, res in _RLIMITS.items():
            value = resource.getrlimit(res)[1]
            hard[name] = _UNLIMITED if value == resource.RLIM_INFINITY else value
        effective = capmod.process_capabilities("CapEff")
        return cls(
            arch=go_arch(),
            kernel=platform.release(),
            cgroup_version=detect_cgroup_version(),
            bounding_capabilities=capmod.process_capabilities("CapBnd"),
            sys_resource="CAP_SYS_RESOURCE" in effective,
            oom_score_adj=current_oom_score_adj(),
            hard_rlimits=hard,
            apparmor=_apparmor_enabled(),
        )


@dataclass(frozen=True, kw_only=True)
class DeviceMapping:
    """A host device made available in the container (``permissions``: ``rwm`` letters)."""

    host_path: str
    container_path: str = ""
    permissions: str = "rwm"


@dataclass(frozen=True, kw_only=True)
class SecurityOptions:
    """The security settings of a container (CRI's ``LinuxContainerSecurityContext``).

    ``apparmor_profile``: ``""``/``unconfined`` for none, ``runtime/default`` for
    ``default_apparmor_profile``, ``localhost/<name>`` or ``<name>`` for a loaded profile;
    ignored (runtime/default) or refused (a named one) when the host has no AppArmor.
    A privileged container runs with neither AppArmor nor seccomp, whatever profile is
    named (as CRI-O does).
    ``masked_paths``/``readonly_paths`` None means the defaults; ``unmasked_proc`` (procMount
    Unmasked) clears both.
    """

    privileged: bool = False
    capabilities_add: Sequence[str] = ()
    capabilities_drop: Sequence[str] = ()
    #: The set before add/drop (None: CRI-O's default set).
    default_capabilities: Sequence[str] | None = None
    readonly_rootfs: bool = False
    no_new_privileges: bool = False
    run_as_non_root: bool = False
    seccomp: SeccompOptions = field(default_factory=SeccompOptions)
    apparmor_profile: str = ""
    default_apparmor_profile: str = "crid-default"
    selinux_label: str = ""
    mount_label: str = ""
    masked_paths: Sequence[str] | None = None
    readonly_paths: Sequence[str] | None = None
    unmasked_proc: bool = False


@dataclass(frozen=True, kw_only=True)
class ContainerOptions:
    """Everything :func:`generate` needs to write a container's config.

    ``rootfs`` is the host path of the container's root filesystem (the user and group
    files are read from it). ``image`` is the image config (or just its ``config``
    section). ``user`` overrides the image's ``User``: ``name``, ``uid``, ``name:group``,
    ``uid:gid``. ``env`` overrides the image's variables by name. ``oom_score_adj`` is
    clamped to what the runtime may set when ``restrict_oom_score_adj`` is true (None:
    when the runtime lacks CAP_SYS_RESOURCE).
    """

    rootfs: str
    image: ImageConfig | ExecutionConfig | None = None
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    env: Mapping[str, str] | Sequence[str] = ()
    working_dir: str = ""
    user: str = ""
    #: The primary group (the CRI's ``run_as_group``); keeps ``/etc/group`` memberships.
    run_as_group: int | None = None
    supplemental_groups: Sequence[int] = ()
    supplemental_groups_policy: SupplementalGroupsPolicy = SupplementalGroupsPolicy.MERGE
    umask: int | None = None
    hostname: str = ""
    domainname: str = ""
    terminal: bool = False
    annotations: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[BindMount | TmpfsMount | Mount] = ()
    image_volumes: ImageVolumeMode = ImageVolumeMode.IGNORE
    image_volume_dir: str | None = None
    shm_size: int = DEFAULT_SHM_SIZE
    devices: Sequence[DeviceMapping] = ()
    resources: ResourceOptions | None = None
    oom_score_adj: int | None = None
    restrict_oom_score_adj: bool | None = None
    rlimits: Sequence[Rlimit] | None = None
    cgroups_path: str = ""
    security: SecurityOptions = field(default_factory=SecurityOptions)
    namespaces: NamespaceOptions = field(default_factory=NamespaceOptions)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    hooks: Hooks | None = None


@dataclass(frozen=True, kw_only=True)
class GeneratedSpec:
    """The result of :func:`generate`: the spec, the stop signal, and the resolved user."""

    spec: Spec
    stop_signal: int
    user: ResolvedUser
    #: Resources left out for want of a cgroup controller (see :func:`restrict_resources`).
    dropped_resources: tuple[str, ...] = ()

    def write(self, bundle: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` into the bundle directory; returns its path.

        Compact JSON: the indented form costs twice the CPU (json's indenting encoder is
        pure Python) and twice the bytes for a reader that is a program.
        """
        path = Path(bundle, "config.json")
        path.write_bytes(self.spec.to_bytes())
        return path


def _host_devices(root: str = "/dev") -> list[tuple[str, Device]]:
    """Every device node under /dev (for privileged containers), skipping pts and friends."""
    out: list[tuple[str, Device]] = []
    skip = {"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/.lxc"}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]  # noqa: PTH118
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)  # noqa: PTH118
            if p in ("/dev/console", "/dev/ptmx") or (p.startswith("/dev/tty") and p != "/dev/tty"):
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
            if not kind:
                continue
            out.append(
                (
                    p,
                    Device(
                        path=p,
                        type=kind,
                        major=os.major(st.st_rdev),
                        minor=os.minor(st.st_rdev),
                        file_mode=stat.S_IMODE(st.st_mode),
                        uid=st.st_uid,
                        gid=st.st_gid,
                    ),
                )
            )
    return out


def _device(mapping: DeviceMapping) -> tuple[Device, DeviceCgroup]:
    try:
        st = Path(mapping.host_path).stat()
    except OSError as err:
        raise InvalidArgumentError(f"device {mapping.host_path!r}: {err.strerror}") from err
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgumentError(f"{mapping.host_path!r} is not a device")
    perms = mapping.permissions or "rwm"
    if set(perms) - set("rwm"):
        raise InvalidArgumentError(f"device permissions {perms!r} are not made of r, w, m")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    dev = Device(
        path=mapping.container_path or mapping.host_path,
        type=kind,
        major=major,
        minor=minor,
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )
    return dev, DeviceCgroup(allow=True, type=kind, major=major, minor=minor, access=perms)


def _rlimits(requested: Iterable[Rlimit], host: HostInfo) -> list[Rlimit]:
    out = []
    for r in requested:
        if r.type not in _RLIMITS:
            raise InvalidArgumentError(f"unknown rlimit {r.type!r}")
        if r.soft > r.hard:
            raise InvalidArgumentError(f"{r.type}: soft limit {r.soft} above hard limit {r.hard}")
        cap = host.hard_rlimits.get(r.type)
        if not host.sys_resource and cap is not None:
            r = r.replace(soft=min(r.soft, cap), hard=min(r.hard, cap))
        out.append(r)
    return out


def _apparmor(sec: SecurityOptions, host: HostInfo) -> str:
    name = sec.apparmor_profile.strip()
    if sec.privileged or name in ("", "unconfined"):
        return ""
    if name == "runtime/default":
        return sec.default_apparmor_profile if host.apparmor else ""
    if not host.apparmor:
        raise InvalidArgumentError(
            f"AppArmor profile {name!r} asked for, but AppArmor is not enabled"
        )
    return name.removeprefix("localhost/")


def generate(
    options: ContainerOptions, *, host: HostInfo | None = None, validate_schema: bool = True
) -> GeneratedSpec:
    """Build the complete Linux runtime config for ``options``.

    Raises :class:`~ocispec.errors.GenerateError` subclasses for bad inputs (unknown
    user, unsafe sysctl, bad profile...). The spec validates against the schema; with
    ``validate_schema=False`` that check (about 8 ms of CPU, most of a create's Python
    work) is skipped: callers on a hot path rely on the tests that validate every
    config this builder makes.
    """
    host = host or HostInfo.detect()
    sec = options.security
    ns = options.namespaces
    image = options.image.config if isinstance(options.image, ImageConfig) else options.image
    image = image or ExecutionConfig()

    # Process: command, env, cwd, user.
    argv = resolve_command(
        command=options.command,
        args=options.args,
        image_entrypoint=image.entrypoint,
        image_cmd=image.cmd,
    )
    user_spec = options.user or image.user
    resolved = resolve_user(
        options.rootfs,
        user_spec,
        supplemental_groups=options.supplemental_groups,
        policy=options.supplemental_groups_policy,
        primary_gid=options.run_as_group,
    )
    if sec.run_as_non_root and resolved.uid == 0:
        raise RunAsNonRootError(
            f"container must run as non-root, but user {user_spec or '(default)'!r} is uid 0"
        )
    defaults = {"PATH": DEFAULT_PATH, "HOME": resolved.home}
    if options.hostname:
        defaults["HOSTNAME"] = options.hostname
    if options.terminal:
        defaults["TERM"] = "xterm"
    env = merge_env(image.env, options.env, defaults=defaults)
    cwd = options.working_dir or image.working_dir or "/"
    if not cwd.startswith("/"):
        raise InvalidArgumentError(f"working directory {cwd!r} is not absolute")
    stop_signal = parse_signal(image.stop_signal) if image.stop_signal else 15

    # Capabilities.
    if sec.privileged:
        caps = capmod.compute_capabilities(add=["ALL"], available=host.bounding_capabilities)
    else:
        caps = capmod.compute_capabilities(
            add=sec.capabilities_add,
            drop=sec.capabilities_drop,
            default=(
                sec.default_capabilities
                if sec.default_capabilities is not None
                else capmod.DEFAULT_CAPABILITIES
            ),
            available=host.bounding_capabilities,
        )

    # OOM score.
    oom = options.oom_score_adj
    if oom is not None:
        restrict = options.restrict_oom_score_adj
        if restrict is None:
            restrict = not host.sys_resource
        oom = restrict_oom_score_adj(oom, host.oom_score_adj) if restrict else oom
        if not -1000 <= oom <= 1000:
            raise InvalidArgumentError(f"oom_score_adj {oom} outside [-1000, 1000]")

    process = Process(
        terminal=options.terminal,
        user=User(
            uid=resolved.uid,
            gid=resolved.gid,
            umask=options.umask,
            additional_gids=resolved.additional_gids,
        ),
        args=argv,
        env=env,
        cwd=cwd,
        capabilities=Capabilities(bounding=caps, effective=caps, permitted=caps),
        rlimits=_rlimits(options.rlimits if options.rlimits is not None else DEFAULT_RLIMITS, host),
        no_new_privileges=sec.no_new_privileges and not sec.privileged,
        apparmor_profile=_apparmor(sec, host),
        oom_score_adj=oom,
        selinux_label=sec.selinux_label,
    )

    # Namespaces, hostname, sysctls.
    namespaces = build_namespaces(ns)
    if (options.hostname or options.domainname) and ns.uts.mode is NamespaceMode.NODE:
        raise InvalidArgumentError(
            "a hostname needs a private or pod UTS namespace, not the node's"
        )
    sysctls = validate_sysctls(
        options.sysctls,
        private_network=ns.private("network"),
        private_ipc=ns.private("ipc"),
        private_uts=ns.private("uts"),
    )

    # Mounts.
    userns = ns.user is not None
    base = default_mounts(
        shm_size=options.shm_size,
        sysfs_readonly=not sec.privileged,
        cgroup_readonly=not sec.privileged,
        private_ipc=ns.private("ipc"),
        bind_sys=userns and not ns.private("network"),
    )
    mounts, propagation = build_mounts(base, options.mounts)
    volumes = image_volume_mounts(
        image.volumes,
        options.image_volumes,
        covered=[m.destination for m in mounts],
        volume_dir=options.image_volume_dir,
    )
    mounts = (*mounts, *volumes)

    # Devices and the device cgroup.
    devices = list(DEFAULT_DEVICES)
    device_rules = list(DEFAULT_DEVICE_CGROUP_RULES)
    if sec.privileged:
        known = {d.path for d in devices}
        devices += [d for path, d in _host_devices() if path not in known]
        device_rules = [DeviceCgroup(allow=True, access="rwm")]
    for mapping in options.devices:
        dev, rule = _device(mapping)
        devices = [d for d in devices if d.path != dev.path] + [dev]
        device_rules.append(rule)

    # Resources.
    res_opts = options.resources or ResourceOptions()
    resources = build_resources(
        dataclasses.replace(res_opts, devices=[*device_rules, *res_opts.devices]),
        cgroup_version=host.cgroup_version,
    )
    dropped: tuple[str, ...] = ()
    if host.cgroup_controllers is not None:
        resources, dropped = restrict_resources(resources, host.cgroup_controllers)

    # Masked and read-only paths.
    if sec.privileged or sec.unmasked_proc:
        masked: Sequence[str] = ()
        readonly: Sequence[str] = ()
    else:
        masked = DEFAULT_MASKED_PATHS if sec.masked_paths is None else sec.masked_paths
        readonly = DEFAULT_READONLY_PATHS if sec.readonly_paths is None else sec.readonly_paths

    linux = Linux(
        uid_mappings=ns.user.uid_mappings if ns.user else (),
        gid_mappings=ns.user.gid_mappings if ns.user else (),
        sysctl=sysctls,
        resources=resources,
        cgroups_path=options.cgroups_path,
        namespaces=namespaces,
        devices=devices,
        seccomp=seccomp_for(
            sec.seccomp,
            capabilities=caps,
            privileged=sec.privileged,
            arch=host.arch,
            kernel=host.kernel,
        ),
        rootfs_propagation=propagation,
        masked_paths=masked,
        readonly_paths=readonly,
        mount_label=sec.mount_label,
    )
    spec = Spec(
        process=process,
        root=Root(path=options.rootfs, readonly=sec.readonly_rootfs),
        hostname=options.hostname,
        domainname=options.domainname,
        mounts=mounts,
        hooks=options.hooks,
        annotations=options.annotations,
        linux=linux,
    )
    if validate_schema:
        validate(spec, Schema.RUNTIME_CONFIG)
    return GeneratedSpec(
        spec=spec, stop_signal=stop_signal, user=resolved, dropped_resources=dropped
    )
