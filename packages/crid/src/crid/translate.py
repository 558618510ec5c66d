"""CRI messages to crid requests and ocispec generator options: the one translation module.

RPC handlers call :func:`pod_request` and :func:`container_request` to validate a
config and turn it into a plain request; the container orchestration calls
:func:`container_options` once the root filesystem and image config are known. CRI
protobuf types never leave this module and ``crid.services``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crid._cri.v1 import api_pb2
from crid.cgroups import check_cgroup_parent
from crid.container.request import ContainerRequest, ImageVolumeRequest
from crid.errors import InvalidConfigError
from crid.limits import check_container_config, check_pod_config
from crid.sandbox.files import DNS, SandboxFiles
from crid.sandbox.request import PodRequest
from crid.state import ContainerMeta, PodMeta, Sandbox
from ocinet import PortMapping
from ocispec.generate import (
    BindMount,
    ContainerOptions,
    DeviceMapping,
    MountPropagation,
    NamespaceMode,
    NamespaceOption,
    NamespaceOptions,
    ResourceOptions,
    SeccompOptions,
    SeccompProfileType,
    SecurityOptions,
    SupplementalGroupsPolicy,
    parse_signal,
)
from ocispec.image import ImageConfig
from ocispec.runtime import Mount

__all__ = [
    "TERMINATION_PATH_ANNOTATION",
    "ContainerPaths",
    "container_options",
    "container_request",
    "namespace_mode",
    "pod_privileged",
    "pod_request",
    "sandbox_seccomp",
    "termination_log_source",
    "wants_pod_network",
    "with_image_volume_refs",
]

#: The kubelet names the container's termination message file in this annotation.
TERMINATION_PATH_ANNOTATION = "io.kubernetes.container.terminationMessagePath"

_MODES: dict[int, NamespaceMode] = {
    api_pb2.POD: NamespaceMode.POD,
    api_pb2.CONTAINER: NamespaceMode.CONTAINER,
    api_pb2.NODE: NamespaceMode.NODE,
    api_pb2.TARGET: NamespaceMode.TARGET,
}
_PROPAGATION: dict[int, MountPropagation] = {
    api_pb2.PROPAGATION_PRIVATE: MountPropagation.PRIVATE,
    api_pb2.PROPAGATION_HOST_TO_CONTAINER: MountPropagation.HOST_TO_CONTAINER,
    api_pb2.PROPAGATION_BIDIRECTIONAL: MountPropagation.BIDIRECTIONAL,
}
_PROTOCOLS: dict[int, str] = {api_pb2.TCP: "tcp", api_pb2.UDP: "udp", api_pb2.SCTP: "sctp"}


def namespace_mode(value: int) -> NamespaceMode:
    """A CRI NamespaceMode as ocispec's."""
    try:
        return _MODES[value]
    except KeyError as err:
        raise InvalidConfigError(f"unknown namespace mode {value}") from err


def pod_request(config: api_pb2.PodSandboxConfig, runtime_handler: str = "") -> PodRequest:
    """Validate a PodSandboxConfig (metadata name, uid, namespace are required)."""
    check_pod_config(config)
    meta = config.metadata
    missing = [f for f in ("name", "uid", "namespace") if not getattr(meta, f)]
    if not config.HasField("metadata") or missing:
        raise InvalidConfigError(
            f"pod sandbox metadata needs {', '.join(missing or ['name', 'uid', 'namespace'])}"
        )
    linux = config.linux
    ns = linux.security_context.namespace_options
    dns = None
    if config.HasField("dns_config"):
        dns = DNS(
            servers=tuple(config.dns_config.servers),
            searches=tuple(config.dns_config.searches),
            options=tuple(config.dns_config.options),
        )
    ports = []
    for mapping in config.port_mappings:
        if mapping.host_port <= 0:
            continue  # only hostPorts need the network's help
        if not 0 < mapping.container_port < 65536 or mapping.host_port > 65535:
            raise InvalidConfigError(
                f"invalid port mapping {mapping.host_port}->{mapping.container_port}"
            )
        ports.append(
            PortMapping(
                host_port=mapping.host_port,
                container_port=mapping.container_port,
                protocol=_PROTOCOLS.get(mapping.protocol, "tcp"),
                host_ip=mapping.host_ip,
            )
        )
    _check_no_user_namespace(ns, "pod sandbox")
    network, ipc, pid = (namespace_mode(m) for m in (ns.network, ns.ipc, ns.pid))
    if NamespaceMode.TARGET in (network, ipc, pid):
        raise InvalidConfigError("a pod sandbox cannot target another container's namespace")
    # For the pod itself, CONTAINER means the same as POD: namespaces of its own.
    network = NamespaceMode.POD if network is NamespaceMode.CONTAINER else network
    ipc = NamespaceMode.POD if ipc is NamespaceMode.CONTAINER else ipc
    return PodRequest(
        meta=PodMeta(name=meta.name, uid=meta.uid, namespace=meta.namespace, attempt=meta.attempt),
        hostname=config.hostname,
        log_directory=config.log_directory,
        dns=dns,
        port_mappings=tuple(ports),
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        cgroup_parent=check_cgroup_parent(linux.cgroup_parent),
        network=network,
        ipc=ipc,
        pid=pid,
        sysctls=dict(linux.sysctls),
        runtime_handler=runtime_handler,
        config=config.SerializeToString(),
    )


def container_request(sandbox_id: str, config: api_pb2.ContainerConfig) -> ContainerRequest:
    """Validate a ContainerConfig (metadata name and an image are required)."""
    check_container_config(config)
    if not sandbox_id:
        raise InvalidConfigError("pod sandbox id must not be empty")
    if not config.metadata.name:
        raise InvalidConfigError("container metadata needs a name")
    if not config.image.image:
        raise InvalidConfigError("container config needs an image")
    ns = config.linux.security_context.namespace_options
    _check_no_user_namespace(ns, "container")
    pid = namespace_mode(ns.pid)
    if pid is NamespaceMode.TARGET and not ns.target_id:
        raise InvalidConfigError("PID namespace mode TARGET needs a target_id")
    _check_recursive_read_only(config.mounts)
    image_volumes = _image_volumes(config)
    stop_signal = 0
    if config.stop_signal:
        stop_signal = parse_signal(api_pb2.Signal.Name(config.stop_signal))
    return ContainerRequest(
        sandbox_id=sandbox_id,
        meta=ContainerMeta(name=config.metadata.name, attempt=config.metadata.attempt),
        image=config.image.image,
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        log_path=config.log_path,
        tty=config.tty,
        stdin=config.stdin,
        stdin_once=config.stdin_once,
        stop_signal=stop_signal,
        termination_message_path=config.annotations.get(TERMINATION_PATH_ANNOTATION, ""),
        pid=pid,
        pid_target=ns.target_id,
        privileged=config.linux.security_context.privileged,
        recursive_read_only=any(m.recursive_read_only for m in config.mounts),
        image_volumes=image_volumes,
        config=config.SerializeToString(),
    )


def _check_no_user_namespace(ns: api_pb2.NamespaceOption, what: str) -> None:
    """crid creates no user namespaces (it advertises ``user_namespaces`` false): a config
    asking for one is refused rather than run in the node's user namespace."""
    if ns.HasField("userns_options") and ns.userns_options.mode != api_pb2.NODE:
        raise InvalidConfigError(
            f"{what} asks for a user namespace (mode"
            f" {api_pb2.NamespaceMode.Name(ns.userns_options.mode)}): crid does not support"
            " user namespaces"
        )


def _check_recursive_read_only(mounts: Iterable[api_pb2.Mount]) -> None:
    """The CRI's rules for ``recursive_read_only``: ``readonly`` set too, and private
    propagation (a submount propagated in later would escape the read-only flag)."""
    for m in mounts:
        if not m.recursive_read_only:
            continue
        where = m.container_path or m.host_path
        if not m.readonly:
            raise InvalidConfigError(
                f"mount {where!r}: recursive_read_only needs readonly to be set too"
            )
        if m.propagation != api_pb2.PROPAGATION_PRIVATE:
            raise InvalidConfigError(
                f"mount {where!r}: recursive_read_only needs PROPAGATION_PRIVATE, not"
                f" {api_pb2.MountPropagation.Name(m.propagation)}"
            )


def _is_image_mount(mount: api_pb2.Mount) -> bool:
    return mount.HasField("image") and bool(mount.image.image)


def _image_volumes(config: api_pb2.ContainerConfig) -> tuple[ImageVolumeRequest, ...]:
    """The config's image mounts, checked as the CRI defines them (KEP-4639)."""
    volumes = []
    for index, m in enumerate(config.mounts):
        if not _is_image_mount(m):
            if m.image_sub_path:
                raise InvalidConfigError(
                    f"mount {m.container_path!r}: image_sub_path needs an image"
                )
            continue
        where = f"image volume {m.image.image!r} at {m.container_path!r}"
        if not m.container_path:
            raise InvalidConfigError(f"{where}: a mount needs a container_path")
        if m.host_path:
            raise InvalidConfigError(f"{where}: image and host_path are mutually exclusive")
        if not m.readonly:
            raise InvalidConfigError(f"{where}: image volumes are read-only; set readonly")
        volumes.append(
            ImageVolumeRequest(
                index=index,
                container_path=m.container_path,
                image=m.image.image,
                sub_path=m.image_sub_path,
            )
        )
    return tuple(volumes)


def with_image_volume_refs(config_bytes: bytes, refs: Mapping[int, str]) -> bytes:
    """The stored ContainerConfig with ``image_ref`` set on the image mounts at ``refs``'s
    indexes, so ContainerStatus reports the image each volume resolved to."""
    if not refs:
        return config_bytes
    config = api_pb2.ContainerConfig.FromString(config_bytes)
    for index, ref in refs.items():
        config.mounts[index].image.image_ref = ref
    return config.SerializeToString()


@dataclass(frozen=True, kw_only=True)
class ContainerPaths:
    """Host paths the container config refers to, and the runtime-wide settings it uses."""

    rootfs: Path
    files: SandboxFiles
    cgroups_path: str
    #: Host file bound at the termination message path (None: the kubelet mounts one).
    termination_log: Path | None = None
    #: The PID namespace to join (POD: a running container's; TARGET: the target's).
    pid_namespace: str = ""
    seccomp_default_profile: str = ""
    #: ``[crid.runtime] default_capabilities`` (None: ocispec's, the same as CRI-O's).
    default_capabilities: tuple[str, ...] | None = None
    #: What to bind for each image mount, by its index in the config's mounts.
    image_volumes: Mapping[int, Path] = field(default_factory=dict)


def _user(sc: api_pb2.LinuxContainerSecurityContext) -> str:
    """The user part only: run_as_group is given to the generator on its own, so that the
    user's /etc/group memberships still count under Merge (as CRI-O and containerd)."""
    user = sc.run_as_username
    if not user and sc.HasField("run_as_user"):
        user = str(sc.run_as_user.value)
    if sc.HasField("run_as_group") and not user:
        raise InvalidConfigError("run_as_group needs run_as_user or run_as_username")
    return user


def _resources(res: api_pb2.LinuxContainerResources) -> ResourceOptions:
    return ResourceOptions(
        cpu_shares=res.cpu_shares or None,
        cpu_quota=res.cpu_quota or None,
        cpu_period=res.cpu_period or None,
        cpuset_cpus=res.cpuset_cpus,
        cpuset_mems=res.cpuset_mems,
        memory_limit=res.memory_limit_in_bytes or None,
        memory_swap=res.memory_swap_limit_in_bytes or None,
        hugepage_limits={h.page_size: h.limit for h in res.hugepage_limits},
        unified=dict(res.unified),
    )


def _runtime_default(default_path: str) -> SeccompOptions:
    if default_path:
        return SeccompOptions(
            type=SeccompProfileType.RUNTIME_DEFAULT, default_profile_path=default_path
        )
    return SeccompOptions(type=SeccompProfileType.RUNTIME_DEFAULT)


def _localhost(path: str) -> SeccompOptions:
    if not path:
        raise InvalidConfigError("a Localhost seccomp profile needs a localhost_ref")
    if not path.startswith("/"):
        raise InvalidConfigError(f"Localhost seccomp profile {path!r} is not an absolute path")
    return SeccompOptions(type=SeccompProfileType.LOCALHOST, localhost_path=path)


def _seccomp_path(path: str, default_path: str) -> SeccompOptions:
    """The deprecated ``seccomp_profile_path`` (older kubelets): "" means unconfined."""
    if path in ("", "unconfined"):
        return SeccompOptions(type=SeccompProfileType.UNCONFINED)
    if path in ("runtime/default", "docker/default"):
        return _runtime_default(default_path)
    if path.startswith("localhost/"):
        return _localhost(path.removeprefix("localhost/"))
    raise InvalidConfigError(f"unknown seccomp_profile_path {path!r}")


def _seccomp(
    profile: api_pb2.SecurityProfile, present: bool, legacy_path: str, default_path: str
) -> SeccompOptions:
    """No profile at all is unconfined (the CRI's rule; the kubelet always sends one):
    RuntimeDefault applies only when asked for."""
    if not present:
        return _seccomp_path(legacy_path, default_path)
    kind = profile.profile_type
    if kind == api_pb2.SecurityProfile.RuntimeDefault:
        return _runtime_default(default_path)
    if kind == api_pb2.SecurityProfile.Unconfined:
        return SeccompOptions(type=SeccompProfileType.UNCONFINED)
    if kind == api_pb2.SecurityProfile.Localhost:
        return _localhost(profile.localhost_ref)
    raise InvalidConfigError(f"unknown seccomp profile type {kind}")


def sandbox_seccomp(config_bytes: bytes, default_path: str) -> SeccompOptions:
    """The infra container's seccomp: the pod's own profile (none when privileged)."""
    sc = api_pb2.PodSandboxConfig.FromString(config_bytes).linux.security_context
    if sc.privileged:
        return SeccompOptions(type=SeccompProfileType.UNCONFINED)
    return _seccomp(sc.seccomp, sc.HasField("seccomp"), sc.seccomp_profile_path, default_path)


def _apparmor(sc: api_pb2.LinuxContainerSecurityContext) -> str:
    if sc.HasField("apparmor"):
        kind = sc.apparmor.profile_type
        if kind == api_pb2.SecurityProfile.RuntimeDefault:
            return "runtime/default"
        if kind == api_pb2.SecurityProfile.Unconfined:
            return "unconfined"
        return f"localhost/{sc.apparmor.localhost_ref}"
    return ""


def _namespaces(
    ns: api_pb2.NamespaceOption, sandbox: Sandbox, pid_namespace: str
) -> NamespaceOptions:
    paths = sandbox.namespaces

    def shared(kind: str) -> NamespaceOption:
        path = paths.get(kind)
        return NamespaceOption.pod(path) if path else NamespaceOption.node()

    pid_mode = namespace_mode(ns.pid)
    if pid_mode is NamespaceMode.NODE:
        pid = NamespaceOption.node()
    elif pid_mode is NamespaceMode.CONTAINER or not pid_namespace:
        pid = NamespaceOption.private()
    else:
        pid = NamespaceOption.target(pid_namespace)
    return NamespaceOptions(
        pid=pid, network=shared("network"), ipc=shared("ipc"), uts=shared("uts")
    )


def _image_volume_mount(m: api_pb2.Mount, source: Path | None) -> BindMount:
    """A read-only bind of the mounted image (``rro`` when asked), private, nosuid, nodev.

    The source is ocistore's read-only mount with nothing mounted below it, so a plain
    (not recursive) bind is already read-only all the way down.
    """
    if source is None:
        raise InvalidConfigError(f"image volume at {m.container_path!r} was not mounted")
    return BindMount(
        source=str(source),
        destination=m.container_path,
        readonly=True,
        recursive_readonly=m.recursive_read_only,
        recursive=False,
        options=("nosuid", "nodev"),
    )


def _mounts(
    config: api_pb2.ContainerConfig, sandbox: Sandbox, paths: ContainerPaths
) -> list[BindMount | Mount]:
    mounts: list[BindMount | Mount] = []
    for index, m in enumerate(config.mounts):
        if _is_image_mount(m):
            mounts.append(_image_volume_mount(m, paths.image_volumes.get(index)))
            continue
        if not m.container_path or not m.host_path:
            raise InvalidConfigError("a mount needs a container_path and a host_path")
        mounts.append(
            BindMount(
                source=m.host_path,
                destination=m.container_path,
                readonly=m.readonly,
                recursive_readonly=m.recursive_read_only,
                propagation=_PROPAGATION.get(m.propagation, MountPropagation.PRIVATE),
            )
        )
    taken = {m.destination for m in mounts}
    files = paths.files
    pod_files = [("/etc/resolv.conf", files.resolv_conf)]
    if "uts" in sandbox.namespaces:
        pod_files += [("/etc/hostname", files.hostname)]
    pod_files += [("/etc/hosts", files.hosts)]
    if "ipc" in sandbox.namespaces:
        pod_files.append(("/dev/shm", files.shm))
    else:
        pod_files.append(("/dev/shm", Path("/dev/shm")))
    readonly = config.linux.security_context.readonly_rootfs
    for destination, source in pod_files:
        if destination not in taken:
            mounts.append(
                BindMount(
                    source=str(source),
                    destination=destination,
                    readonly=readonly and destination != "/dev/shm",
                    options=("nosuid", "nodev", "noexec") if destination == "/dev/shm" else (),
                )
            )
    if "ipc" not in sandbox.namespaces and not Path("/dev/mqueue").is_dir():
        # The node's IPC namespace, but no /dev/mqueue to bind on this host: mount the
        # namespace's (the node's) message queue file system directly.
        mounts.append(
            Mount(
                destination="/dev/mqueue",
                type="mqueue",
                source="mqueue",
                options=["nosuid", "noexec", "nodev"],
            )
        )
    termination = config.annotations.get(TERMINATION_PATH_ANNOTATION, "")
    if paths.termination_log is not None and termination and termination not in taken:
        mounts.append(BindMount(source=str(paths.termination_log), destination=termination))
    return mounts


def container_options(
    config_bytes: bytes,
    sandbox: Sandbox,
    image: ImageConfig,
    paths: ContainerPaths,
) -> ContainerOptions:
    """The ocispec generator's options for a stored ContainerConfig in ``sandbox``.

    Looks at the host's file system (/dev/mqueue): call it off the event loop.
    """
    config = api_pb2.ContainerConfig()
    config.ParseFromString(config_bytes)
    pod = api_pb2.PodSandboxConfig()
    pod.ParseFromString(sandbox.config)
    linux = config.linux
    sc = linux.security_context
    caps = sc.capabilities
    security = SecurityOptions(
        privileged=sc.privileged,
        capabilities_add=tuple(caps.add_capabilities),
        capabilities_drop=tuple(caps.drop_capabilities),
        default_capabilities=paths.default_capabilities,
        readonly_rootfs=sc.readonly_rootfs,
        no_new_privileges=sc.no_new_privs,
        seccomp=_seccomp(
            sc.seccomp,
            sc.HasField("seccomp"),
            sc.seccomp_profile_path,
            paths.seccomp_default_profile,
        ),
        apparmor_profile=_apparmor(sc),
        masked_paths=tuple(sc.masked_paths) or None,
        readonly_paths=tuple(sc.readonly_paths) or None,
    )
    policy = (
        SupplementalGroupsPolicy.STRICT
        if sc.supplemental_groups_policy == api_pb2.Strict
        else SupplementalGroupsPolicy.MERGE
    )
    env: Mapping[str, str] = {
        kv.key: kv.value.decode(errors="replace") if isinstance(kv.value, bytes) else kv.value
        for kv in config.envs
    }
    return ContainerOptions(
        rootfs=str(paths.rootfs),
        image=image,
        command=tuple(config.command),
        args=tuple(config.args),
        env=env,
        working_dir=config.working_dir,
        user=_user(sc),
        run_as_group=sc.run_as_group.value if sc.HasField("run_as_group") else None,
        supplemental_groups=tuple(sc.supplemental_groups),
        supplemental_groups_policy=policy,
        hostname=sandbox.hostname if "uts" in sandbox.namespaces else "",
        terminal=config.tty,
        annotations=dict(config.annotations),
        mounts=_mounts(config, sandbox, paths),
        devices=[
            DeviceMapping(
                host_path=d.host_path,
                container_path=d.container_path,
                permissions=d.permissions or "rwm",
            )
            for d in config.devices
        ],
        resources=_resources(linux.resources),
        oom_score_adj=linux.resources.oom_score_adj if linux.HasField("resources") else None,
        cgroups_path=paths.cgroups_path,
        security=security,
        namespaces=_namespaces(sc.namespace_options, sandbox, paths.pid_namespace),
    )


def termination_log_source(config_bytes: bytes, own_file: Path) -> Path | None:
    """The host file behind the container's termination message path, if it has one.

    The kubelet usually mounts a file of its own there; otherwise crid bound
    ``own_file`` (from the bundle).
    """
    config = api_pb2.ContainerConfig()
    config.ParseFromString(config_bytes)
    path = config.annotations.get(TERMINATION_PATH_ANNOTATION, "")
    if not path:
        return None
    for mount in config.mounts:
        if mount.container_path == path:
            return Path(mount.host_path)
    return own_file


def pod_privileged(config_bytes: bytes) -> bool:
    """Whether a stored PodSandboxConfig lets its containers be privileged."""
    config = api_pb2.PodSandboxConfig.FromString(config_bytes)
    return config.linux.security_context.privileged


def wants_pod_network(config_bytes: bytes) -> bool:
    """Whether a stored PodSandboxConfig asks for a pod network (not the node's)."""
    config = api_pb2.PodSandboxConfig.FromString(config_bytes)
    return config.linux.security_context.namespace_options.network != api_pb2.NODE
