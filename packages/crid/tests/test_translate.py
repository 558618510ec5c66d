"""crid.translate: CRI configs to requests and to ocispec generator options (no root)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crid._cri.v1 import api_pb2
from crid.container.request import ContainerRequest
from crid.errors import InvalidConfigError
from crid.sandbox.files import DNS, SandboxFiles, hosts_file, resolv_conf
from crid.state import PodMeta, Sandbox, SandboxState
from crid.translate import (
    ContainerPaths,
    container_options,
    container_request,
    pod_request,
    sandbox_seccomp,
    termination_log_source,
)
from ocispec.generate import (
    BindMount,
    MountPropagation,
    NamespaceMode,
    SeccompOptions,
    SeccompProfileType,
    SupplementalGroupsPolicy,
)
from ocispec.image import ImageConfig

TERMINATION = "io.kubernetes.container.terminationMessagePath"
Profile = api_pb2.SecurityProfile
Context = api_pb2.LinuxContainerSecurityContext


def pod_config(**fields: object) -> api_pb2.PodSandboxConfig:
    return api_pb2.PodSandboxConfig(
        metadata=api_pb2.PodSandboxMetadata(name="web", uid="u-1", namespace="ns", attempt=2),
        **fields,  # type: ignore[arg-type]
    )


def sandbox(config: api_pb2.PodSandboxConfig, namespaces: dict[str, str]) -> Sandbox:
    return Sandbox(
        id="a" * 64,
        name="k8s_POD_web_ns_u-1_2",
        meta=PodMeta(name="web", uid="u-1", namespace="ns", attempt=2),
        state=SandboxState.READY,
        created_at=1,
        hostname="web-host",
        namespaces=namespaces,
        config=config.SerializeToString(),
    )


PINNED = {"network": "/run/ns/netns/x", "ipc": "/run/ns/ipcns/x", "uts": "/run/ns/utsns/x"}


def paths(tmp_path: Path, **extra: object) -> ContainerPaths:
    return ContainerPaths(
        rootfs=tmp_path / "rootfs",
        files=SandboxFiles(directory=tmp_path / "pod"),
        cgroups_path="/pods/crid-x",
        **extra,  # type: ignore[arg-type]
    )


def test_pod_request_requires_metadata() -> None:
    with pytest.raises(InvalidConfigError, match="name, uid, namespace"):
        pod_request(api_pb2.PodSandboxConfig())
    config = pod_config()
    config.metadata.uid = ""
    with pytest.raises(InvalidConfigError, match="uid"):
        pod_request(config)


def test_pod_request_fields_and_name() -> None:
    config = pod_config(
        hostname="h",
        log_directory="/var/log/pods/x",
        dns_config=api_pb2.DNSConfig(servers=["1.1.1.1"], searches=["a"], options=["ndots:5"]),
        port_mappings=[
            api_pb2.PortMapping(container_port=80, host_port=8080, protocol=api_pb2.UDP),
            api_pb2.PortMapping(container_port=81),  # no hostPort: nothing to map
        ],
        labels={"app": "web"},
        linux=api_pb2.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods/pod1",
            sysctls={"net.ipv4.ping_group_range": "0 1"},
            security_context=api_pb2.LinuxSandboxSecurityContext(
                namespace_options=api_pb2.NamespaceOption(
                    network=api_pb2.NODE, pid=api_pb2.POD, ipc=api_pb2.CONTAINER
                )
            ),
        ),
    )
    request = pod_request(config, "runc")
    assert request.name == "k8s_POD_web_ns_u-1_2"
    assert request.dns == DNS(servers=("1.1.1.1",), searches=("a",), options=("ndots:5",))
    assert [(p.host_port, p.container_port, p.protocol) for p in request.port_mappings] == [
        (8080, 80, "udp")
    ]
    assert request.network is NamespaceMode.NODE
    assert request.ipc is NamespaceMode.POD and request.pid is NamespaceMode.POD
    assert request.cgroup_parent == "/kubepods/pod1"
    assert request.sysctls == {"net.ipv4.ping_group_range": "0 1"}
    assert request.runtime_handler == "runc"
    assert api_pb2.PodSandboxConfig.FromString(request.config) == config


def test_pod_request_refuses_target_mode() -> None:
    config = pod_config()
    config.linux.security_context.namespace_options.pid = api_pb2.TARGET
    with pytest.raises(InvalidConfigError, match="target"):
        pod_request(config)


def test_container_request_validation_and_stop_signal() -> None:
    with pytest.raises(InvalidConfigError, match="name"):
        container_request("p", api_pb2.ContainerConfig())
    with pytest.raises(InvalidConfigError, match="image"):
        container_request(
            "p", api_pb2.ContainerConfig(metadata=api_pb2.ContainerMetadata(name="c"))
        )
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c", attempt=3),
        image=api_pb2.ImageSpec(image="busybox"),
        stop_signal=api_pb2.SIGINT,
        annotations={TERMINATION: "/dev/termination-log"},
    )
    request = container_request("p", config)
    assert request.stop_signal == 2
    assert request.meta.attempt == 3
    assert request.termination_message_path == "/dev/termination-log"
    config.linux.security_context.namespace_options.pid = api_pb2.TARGET
    with pytest.raises(InvalidConfigError, match="target_id"):
        container_request("p", config)


def test_container_options_translate_everything(tmp_path: Path) -> None:
    sc = api_pb2.LinuxContainerSecurityContext(
        capabilities=api_pb2.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["KILL"]),
        run_as_user=api_pb2.Int64Value(value=1000),
        run_as_group=api_pb2.Int64Value(value=2000),
        supplemental_groups=[3000],
        supplemental_groups_policy=api_pb2.Strict,
        readonly_rootfs=True,
        no_new_privs=True,
        seccomp=api_pb2.SecurityProfile(profile_type=api_pb2.SecurityProfile.Unconfined),
        apparmor=api_pb2.SecurityProfile(
            profile_type=api_pb2.SecurityProfile.Localhost, localhost_ref="mine"
        ),
        namespace_options=api_pb2.NamespaceOption(pid=api_pb2.POD),
    )
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"),
        image=api_pb2.ImageSpec(image="busybox"),
        command=["/bin/app"],
        args=["--flag"],
        working_dir="/work",
        envs=[api_pb2.KeyValue(key="A", value=b"1")],
        mounts=[
            api_pb2.Mount(
                container_path="/data",
                host_path="/srv/data",
                readonly=True,
                propagation=api_pb2.PROPAGATION_HOST_TO_CONTAINER,
            ),
            api_pb2.Mount(container_path="/etc/hosts", host_path="/kubelet/hosts"),
        ],
        devices=[api_pb2.Device(container_path="/dev/fuse", host_path="/dev/fuse")],
        tty=True,
        annotations={TERMINATION: "/dev/termination-log"},
        linux=api_pb2.LinuxContainerConfig(
            resources=api_pb2.LinuxContainerResources(
                cpu_shares=512,
                cpu_quota=20000,
                cpu_period=100000,
                memory_limit_in_bytes=1 << 26,
                oom_score_adj=500,
            ),
            security_context=sc,
        ),
    )
    termination = tmp_path / "termination-log"
    options = container_options(
        config.SerializeToString(),
        sandbox(pod_config(), PINNED),
        ImageConfig.from_json(b'{"architecture":"amd64","os":"linux","config":{}}'),
        paths(tmp_path, termination_log=termination, pid_namespace="/proc/42/ns/pid"),
    )
    assert (options.command, options.args, options.working_dir) == (
        ("/bin/app",),
        ("--flag",),
        "/work",
    )
    assert options.env == {"A": "1"}
    assert (options.user, options.run_as_group) == ("1000", 2000)
    assert options.supplemental_groups == (3000,)
    assert options.supplemental_groups_policy is SupplementalGroupsPolicy.STRICT
    assert options.hostname == "web-host" and options.terminal
    sec = options.security
    assert sec.capabilities_add == ("NET_ADMIN",) and sec.capabilities_drop == ("KILL",)
    assert sec.readonly_rootfs and sec.no_new_privileges
    assert sec.seccomp.type is SeccompProfileType.UNCONFINED
    assert sec.apparmor_profile == "localhost/mine"
    assert options.resources is not None
    assert options.resources.cpu_shares == 512 and options.resources.memory_limit == 1 << 26
    assert options.oom_score_adj == 500
    assert options.cgroups_path == "/pods/crid-x"
    ns = options.namespaces
    assert ns.network.path == PINNED["network"] and ns.network.mode is NamespaceMode.POD
    assert ns.uts.path == PINNED["uts"] and ns.ipc.path == PINNED["ipc"]
    assert ns.pid.mode is NamespaceMode.TARGET and ns.pid.path == "/proc/42/ns/pid"
    mounts = {m.destination: m for m in options.mounts if isinstance(m, BindMount)}
    assert mounts["/data"].readonly
    assert mounts["/data"].propagation is MountPropagation.HOST_TO_CONTAINER
    assert mounts["/etc/hosts"].source == "/kubelet/hosts"  # the kubelet's wins
    assert mounts["/etc/hostname"].source == str(tmp_path / "pod" / "hostname")
    assert mounts["/etc/resolv.conf"].readonly  # read-only root: pod files too
    assert mounts["/dev/shm"].source == str(tmp_path / "pod" / "shm")
    assert mounts["/dev/termination-log"].source == str(termination)
    assert [d.host_path for d in options.devices] == ["/dev/fuse"]


def test_node_namespaces_and_defaults(tmp_path: Path) -> None:
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"),
        image=api_pb2.ImageSpec(image="busybox"),
    )
    config.linux.security_context.namespace_options.pid = api_pb2.NODE
    options = container_options(
        config.SerializeToString(),
        sandbox(pod_config(), {}),
        ImageConfig.from_json(b'{"architecture":"amd64","os":"linux"}'),
        paths(tmp_path),
    )
    ns = options.namespaces
    assert {ns.network.mode, ns.ipc.mode, ns.uts.mode, ns.pid.mode} == {NamespaceMode.NODE}
    assert options.hostname == ""
    # No seccomp profile at all is unconfined (RuntimeDefault only when asked for).
    assert options.security.seccomp.type is SeccompProfileType.UNCONFINED
    binds = {m.destination: m for m in options.mounts if isinstance(m, BindMount)}
    assert binds["/dev/shm"].source == "/dev/shm"
    assert "/etc/hostname" not in binds


def test_recursive_read_only_rules() -> None:
    """The CRI's rules: readonly set too, private propagation; the request says it needs rro."""

    def request(**mount: Any) -> ContainerRequest:
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name="c"),
            image=api_pb2.ImageSpec(image="b"),
            mounts=[api_pb2.Mount(container_path="/mnt", host_path="/srv", **mount)],
        )
        return container_request("p", config)

    with pytest.raises(InvalidConfigError, match=r"'/mnt'.*needs readonly"):
        request(recursive_read_only=True)
    for propagation in ("HOST_TO_CONTAINER", "BIDIRECTIONAL"):
        with pytest.raises(InvalidConfigError, match=rf"PROPAGATION_PRIVATE, not.*{propagation}"):
            request(
                recursive_read_only=True,
                readonly=True,
                propagation=api_pb2.MountPropagation.Value(f"PROPAGATION_{propagation}"),
            )
    assert request(recursive_read_only=True, readonly=True).recursive_read_only
    assert not request(readonly=True).recursive_read_only


def test_user_namespaces_are_refused() -> None:
    pod = pod_config()
    pod.linux.security_context.namespace_options.userns_options.mode = api_pb2.NODE
    pod_request(pod)  # the node's user namespace is what crid gives anyway
    pod.linux.security_context.namespace_options.userns_options.mode = api_pb2.POD
    with pytest.raises(InvalidConfigError, match=r"user namespace \(mode POD"):
        pod_request(pod)
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="b")
    )
    container_request("p", config)
    config.linux.security_context.namespace_options.userns_options.mode = api_pb2.POD
    with pytest.raises(InvalidConfigError, match="does not support user namespaces"):
        container_request("p", config)


def test_run_as_group_needs_a_user(tmp_path: Path) -> None:
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"), image=api_pb2.ImageSpec(image="b")
    )
    config.linux.security_context.run_as_group.value = 5
    with pytest.raises(InvalidConfigError, match="run_as_group"):
        container_options(
            config.SerializeToString(),
            sandbox(pod_config(), PINNED),
            ImageConfig.from_json(b'{"architecture":"amd64","os":"linux"}'),
            paths(tmp_path),
        )


def test_termination_log_source(tmp_path: Path) -> None:
    own = tmp_path / "own"
    config = api_pb2.ContainerConfig(annotations={TERMINATION: "/dev/termination-log"})
    assert termination_log_source(config.SerializeToString(), own) == own
    config.mounts.append(
        api_pb2.Mount(container_path="/dev/termination-log", host_path="/kubelet/term")
    )
    assert termination_log_source(config.SerializeToString(), own) == Path("/kubelet/term")
    assert termination_log_source(b"", own) is None


def test_pod_files_content(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.1\n")
    assert resolv_conf(None, host) == "nameserver 192.0.2.1\n"
    assert resolv_conf(
        DNS(servers=("10.0.0.10",), searches=("a", "b"), options=("ndots:5",)), host
    ) == ("nameserver 10.0.0.10\nsearch a b\noptions ndots:5\n")
    assert "127.0.1.1\tweb" in hosts_file("web")


def test_configured_default_capabilities_are_the_starting_set(tmp_path: Path) -> None:
    from ocispec.generate import generate

    (tmp_path / "rootfs").mkdir()
    (tmp_path / "pod").mkdir()
    for name in ("hostname", "hosts", "resolv.conf"):
        (tmp_path / "pod" / name).write_text("")
    (tmp_path / "pod" / "shm").mkdir()
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"),
        image=api_pb2.ImageSpec(image="busybox"),
    )
    config.linux.security_context.capabilities.add_capabilities.append("NET_RAW")
    config.linux.security_context.capabilities.drop_capabilities.append("KILL")
    options = container_options(
        config.SerializeToString(),
        sandbox(pod_config(), PINNED),
        ImageConfig.from_json(b'{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]}}'),
        paths(tmp_path, default_capabilities=("CHOWN", "KILL", "SETUID")),
    )
    caps = generate(options).spec.process.capabilities  # type: ignore[union-attr]
    assert caps is not None
    assert set(caps.bounding) == {"CAP_CHOWN", "CAP_SETUID", "CAP_NET_RAW"}


def _seccomp_of(tmp_path: Path, sc: api_pb2.LinuxContainerSecurityContext) -> SeccompOptions:
    config = api_pb2.ContainerConfig(
        metadata=api_pb2.ContainerMetadata(name="c"),
        image=api_pb2.ImageSpec(image="busybox"),
        linux=api_pb2.LinuxContainerConfig(security_context=sc),
    )
    return container_options(
        config.SerializeToString(),
        sandbox(pod_config(), PINNED),
        ImageConfig.from_json(b'{"architecture":"amd64","os":"linux"}'),
        paths(tmp_path, seccomp_default_profile="/etc/crid/seccomp.json"),
    ).security.seccomp


def test_seccomp_profiles(tmp_path: Path) -> None:
    unconfined = SeccompProfileType.UNCONFINED
    default = SeccompProfileType.RUNTIME_DEFAULT
    assert _seccomp_of(tmp_path, Context()).type is unconfined
    # An empty SecurityProfile is present: its zero profile_type is RuntimeDefault.
    present = _seccomp_of(tmp_path, Context(seccomp=Profile()))
    assert present.type is default and present.default_profile_path == "/etc/crid/seccomp.json"
    local = _seccomp_of(
        tmp_path, Context(seccomp=Profile(profile_type=Profile.Localhost, localhost_ref="/p.json"))
    )
    assert (local.type, local.localhost_path) == (SeccompProfileType.LOCALHOST, "/p.json")
    for ref, message in (("", "needs a localhost_ref"), ("p.json", "not an absolute path")):
        with pytest.raises(InvalidConfigError, match=message):
            _seccomp_of(
                tmp_path,
                Context(seccomp=Profile(profile_type=Profile.Localhost, localhost_ref=ref)),
            )
    # The deprecated string field counts only when no profile is set.
    for path, kind in (
        ("unconfined", unconfined),
        ("runtime/default", default),
        ("docker/default", default),
        ("localhost//var/lib/p.json", SeccompProfileType.LOCALHOST),
    ):
        assert _seccomp_of(tmp_path, Context(seccomp_profile_path=path)).type is kind, path
    assert (
        _seccomp_of(tmp_path, Context(seccomp_profile_path="localhost//var/lib/p.json"))
    ).localhost_path == "/var/lib/p.json"
    overridden = Context(
        seccomp=Profile(profile_type=Profile.Unconfined), seccomp_profile_path="runtime/default"
    )
    assert _seccomp_of(tmp_path, overridden).type is unconfined
    for bad in ("localhost/relative.json", "nonsense"):
        with pytest.raises(InvalidConfigError, match="seccomp"):
            _seccomp_of(tmp_path, Context(seccomp_profile_path=bad))


def test_sandbox_seccomp_for_the_infra_container() -> None:
    def of(sc: api_pb2.LinuxSandboxSecurityContext) -> SeccompOptions:
        config = pod_config(linux=api_pb2.LinuxPodSandboxConfig(security_context=sc))
        return sandbox_seccomp(config.SerializeToString(), "")

    assert of(api_pb2.LinuxSandboxSecurityContext()).type is SeccompProfileType.UNCONFINED
    runtime_default = api_pb2.LinuxSandboxSecurityContext(seccomp=Profile())
    assert of(runtime_default).type is SeccompProfileType.RUNTIME_DEFAULT
    privileged = api_pb2.LinuxSandboxSecurityContext(seccomp=Profile(), privileged=True)
    assert of(privileged).type is SeccompProfileType.UNCONFINED
    legacy = api_pb2.LinuxSandboxSecurityContext(seccomp_profile_path="runtime/default")
    assert of(legacy).type is SeccompProfileType.RUNTIME_DEFAULT
