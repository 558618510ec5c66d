"""Unit tests of the generator's parts: command/env, capabilities, mounts, resources,
namespaces, and the whole builder (every config it writes validates). Seccomp and sysctls:
test_generate_security.py."""

from __future__ import annotations

import atexit
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocispec import (
    InvalidArgumentError,
    RunAsNonRootError,
    Schema,
    violations,
)
from ocispec.generate import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    BindMount,
    ContainerOptions,
    HostInfo,
    ImageVolumeMode,
    MountPropagation,
    NamespaceOption,
    NamespaceOptions,
    ResourceOptions,
    SeccompOptions,
    SeccompProfileType,
    SecurityOptions,
    TmpfsMount,
    UserNamespace,
    blkio_weight_to_io_weight,
    build_mounts,
    build_namespaces,
    build_resources,
    capabilities_from_mask,
    capability_mask,
    compute_capabilities,
    cpu_shares_to_weight,
    cpu_weight_to_shares,
    default_mounts,
    generate,
    image_volume_mounts,
    io_weight_to_blkio_weight,
    memory_swap_to_v2,
    merge_env,
    normalize_capability,
    parse_signal,
    resolve_command,
    restrict_oom_score_adj,
)
from ocispec.image import ExecutionConfig, ImageConfig

from .conftest import HOST

# -- command, env, signals ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ((), (), ("/ep", "-x", "cmd1")),
        ((), ("a1",), ("/ep", "-x", "a1")),
        (("/c",), (), ("/c",)),
        (("/c",), ("a1", "a2"), ("/c", "a1", "a2")),
    ],
)
def test_kubernetes_command_rules(command, args, expected) -> None:  # type: ignore[no-untyped-def]
    got = resolve_command(
        command=command, args=args, image_entrypoint=("/ep", "-x"), image_cmd=("cmd1",)
    )
    assert got == expected


def test_no_command_is_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="no command"):
        resolve_command()
    assert resolve_command(image_cmd=["sh"]) == ("sh",)


def test_env_merge() -> None:
    env = merge_env(["A=1", "PATH=/img", "B=2"], {"B": "explicit", "C": ""})
    assert env == ("A=1", "PATH=/img", "B=explicit", "C=")
    assert merge_env([], ["X=1"]) == (
        "X=1",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )
    assert merge_env(["NOVALUE"], [], defaults={}) == ("NOVALUE=",)
    with pytest.raises(InvalidArgumentError):
        merge_env(["=x"])


def test_signals() -> None:
    assert parse_signal("SIGTERM") == signal.SIGTERM
    assert parse_signal("int") == signal.SIGINT
    assert parse_signal("9") == 9
    assert parse_signal("SIGRTMIN+3") == signal.SIGRTMIN + 3
    with pytest.raises(InvalidArgumentError):
        parse_signal("SIGNOPE")


# -- capabilities ---------------------------------------------------------------------------


def test_capability_arithmetic() -> None:
    assert normalize_capability("net_raw") == "CAP_NET_RAW"
    with pytest.raises(InvalidArgumentError):
        normalize_capability("CAP_FLY")
    assert compute_capabilities() == tuple(c for c in ALL_CAPABILITIES if c in DEFAULT_CAPABILITIES)
    assert compute_capabilities(add=["ALL"], drop=["CHOWN"]) == tuple(
        c for c in ALL_CAPABILITIES if c != "CAP_CHOWN"
    )
    assert compute_capabilities(drop=["ALL"], add=["NET_RAW"]) == ("CAP_NET_RAW",)
    assert compute_capabilities(add=["ALL"], drop=["ALL"]) == ()
    limited = ("CAP_CHOWN", "CAP_KILL")
    assert compute_capabilities(add=["ALL"], available=limited) == limited
    with pytest.raises(InvalidArgumentError, match="bounding set"):
        compute_capabilities(add=["SYS_ADMIN"], available=limited)
    assert capabilities_from_mask(0x1FFFEFFFFFF) == tuple(
        c for c in ALL_CAPABILITIES if c != "CAP_SYS_RESOURCE"
    )
    assert capability_mask(["CAP_CHOWN", "CAP_KILL"]) == 0b100001


# -- mounts ---------------------------------------------------------------------------------


def test_mount_building(tmp_path: Path) -> None:
    defaults = default_mounts()
    mounts, prop = build_mounts(
        defaults,
        [
            BindMount(
                source=str(tmp_path),
                destination="/data/sub/../x",
                propagation=MountPropagation.HOST_TO_CONTAINER,
            ),
            TmpfsMount(destination="/dev/shm", size=1024),
            BindMount(source=str(tmp_path), destination="/a", readonly=True),
        ],
    )
    dests = [m.destination for m in mounts]
    assert dests[: len(defaults)] == [m.destination for m in defaults]
    assert dests[len(defaults) :] == ["/a", "/data/x"]
    assert prop == "slave"
    shm = next(m for m in mounts if m.destination == "/dev/shm")
    assert shm.type == "tmpfs" and "size=1024" in shm.options
    data = next(m for m in mounts if m.destination == "/data/x")
    assert data.options == ("rbind", "rslave")
    _, prop = build_mounts(
        defaults,
        [BindMount(source="/", destination="/h", propagation=MountPropagation.BIDIRECTIONAL)],
    )
    assert prop == "shared"
    for bad in (
        [BindMount(source="rel", destination="/x")],
        [BindMount(source=str(tmp_path / "missing"), destination="/x")],
        [TmpfsMount(destination="relative")],
        [TmpfsMount(destination="/x"), TmpfsMount(destination="/x/")],
        [
            BindMount(
                source=str(tmp_path),
                destination="/r",
                recursive_readonly=True,
                propagation=MountPropagation.HOST_TO_CONTAINER,
            )
        ],
    ):
        with pytest.raises(InvalidArgumentError):
            build_mounts(defaults, bad)
    rro, _ = build_mounts(
        defaults, [BindMount(source=str(tmp_path), destination="/r", recursive_readonly=True)]
    )
    assert next(m for m in rro if m.destination == "/r").options == ("rbind", "rprivate", "rro")
    assert image_volume_mounts(["/v"], ImageVolumeMode.IGNORE) == ()
    vols = image_volume_mounts(["/v", "/covered"], ImageVolumeMode.TMPFS, covered=["/covered"])
    assert [(m.destination, m.type) for m in vols] == [("/v", "tmpfs")]
    vols = image_volume_mounts(
        ["/var/lib/db"], ImageVolumeMode.BIND, volume_dir=str(tmp_path / "vols")
    )
    assert vols[0].source == str(tmp_path / "vols" / "var_lib_db") and Path(vols[0].source).is_dir()
    hostipc = default_mounts(private_ipc=False, bind_sys=True)
    assert next(m for m in hostipc if m.destination == "/dev/mqueue").type == "bind"
    assert next(m for m in hostipc if m.destination == "/sys").type == "bind"


# -- resources ------------------------------------------------------------------------------


@given(st.integers(1, 10000))
def test_weight_shares_inverse(weight: int) -> None:
    shares = cpu_weight_to_shares(weight)
    assert 2 <= shares <= 262144
    assert cpu_shares_to_weight(shares) == weight


@given(st.integers(2, 262144))
def test_shares_weight_range(shares: int) -> None:
    weight = cpu_shares_to_weight(shares)
    assert 1 <= weight <= 10000
    assert cpu_shares_to_weight(cpu_weight_to_shares(weight)) == weight


@given(st.integers(10, 1000))
def test_blkio_weight_round_trips_through_io_weight(weight: int) -> None:
    io = blkio_weight_to_io_weight(weight)
    assert 1 <= io <= 10000
    assert io_weight_to_blkio_weight(io) == weight


def test_known_conversions() -> None:
    assert cpu_shares_to_weight(1024) == 39 and cpu_shares_to_weight(2) == 1
    assert cpu_shares_to_weight(262144) == 10000 and cpu_shares_to_weight(0) == 0
    assert blkio_weight_to_io_weight(500) == 4950
    assert memory_swap_to_v2(300, 100) == 200
    assert memory_swap_to_v2(-1, 100) == -1 and memory_swap_to_v2(0, -1) == -1
    with pytest.raises(InvalidArgumentError):
        memory_swap_to_v2(50, 100)
    with pytest.raises(InvalidArgumentError):
        memory_swap_to_v2(50, 0)
    assert restrict_oom_score_adj(-998, 0) == 0
    assert restrict_oom_score_adj(500, -100) == 500
    assert restrict_oom_score_adj(5000, 0) == 1000


def test_resources_v1_and_v2() -> None:
    opts = ResourceOptions(
        cpu_weight=100,
        cpu_quota=50000,
        cpu_period=100000,
        memory_limit=1 << 30,
        pids_limit=10,
        unified={
            "memory.swap.max": "1073741824",
            "memory.low": "1000",
            "hugetlb.2MB.max": "4194304",
        },
    )
    v1 = build_resources(opts, cgroup_version=1)
    assert v1.cpu is not None and v1.cpu.shares == cpu_weight_to_shares(100)
    assert v1.memory is not None and (v1.memory.limit, v1.memory.swap, v1.memory.reservation) == (
        1 << 30,
        2 << 30,
        1000,
    )
    assert v1.hugepage_limits[0].page_size == "2MB" and not v1.unified
    v2 = build_resources(opts, cgroup_version=2)
    assert v2.unified["cpu.weight"] == "100" and v2.unified["memory.low"] == "1000"
    assert v2.cpu is not None and v2.cpu.shares is None and v2.cpu.quota == 50000
    with pytest.raises(InvalidArgumentError, match="no cgroup v1 equivalent"):
        build_resources(ResourceOptions(unified={"memory.high": "1G"}), cgroup_version=1)
    assert build_resources(
        ResourceOptions(unified={"memory.high": "1G"}), cgroup_version=2
    ).unified == {"memory.high": "1G"}
    assert (
        build_resources(
            ResourceOptions(unified={"cpu.max": "max 100000"}), cgroup_version=1
        ).cpu.quota
        == -1
    )  # type: ignore[union-attr]
    for bad in (
        ResourceOptions(cpu_shares=1),
        ResourceOptions(cpu_period=10),
        ResourceOptions(cpu_quota=10),
        ResourceOptions(memory_limit=100, memory_swap=50),
        ResourceOptions(memory_swappiness=101),
    ):
        with pytest.raises(InvalidArgumentError):
            build_resources(bad, cgroup_version=1)


# -- namespaces -----------------------------------------------------------------------------


def test_namespaces() -> None:
    ns = build_namespaces(
        NamespaceOptions(
            network=NamespaceOption.pod("/run/ns/net"),
            ipc=NamespaceOption.node(),
            pid=NamespaceOption.target(42),
            user=UserNamespace.mapped(100000),
        )
    )
    assert [(n.type, n.path) for n in ns] == [
        ("pid", "/proc/42/ns/pid"),
        ("network", "/run/ns/net"),
        ("uts", ""),
        ("mount", ""),
        ("cgroup", ""),
        ("user", ""),
    ]
    with pytest.raises(InvalidArgumentError):
        build_namespaces(NamespaceOptions(network=NamespaceOption.target(3, "net")))
    with pytest.raises(InvalidArgumentError):
        build_namespaces(NamespaceOptions(network=NamespaceOption.pod("relative")))
    with pytest.raises(InvalidArgumentError):
        build_namespaces(NamespaceOptions(user=UserNamespace()))


# -- the builder ----------------------------------------------------------------------------


@pytest.fixture
def tiny_rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n"
    )
    (tmp_path / "etc" / "group").write_text("root:x:0:\nweb:x:33:\n")
    return tmp_path


def test_builder_image_rules_and_checks(tiny_rootfs: Path) -> None:
    image = ImageConfig(
        architecture="amd64",
        os="linux",
        config=ExecutionConfig(
            entrypoint=["/ep"],
            cmd=["c"],
            env=["X=1"],
            user="web",
            working_dir="/srv",
            stop_signal="SIGQUIT",
        ),
    )
    g = generate(
        ContainerOptions(rootfs=str(tiny_rootfs), image=image, terminal=True, oom_score_adj=-500),
        host=HOST,
    )
    p = g.spec.process
    assert p is not None
    assert p.args == ("/ep", "c") and p.cwd == "/srv" and (p.user.uid, p.user.gid) == (33, 33)
    assert "HOME=/var/www" in p.env and "TERM=xterm" in p.env and p.terminal
    assert g.stop_signal == signal.SIGQUIT
    assert p.oom_score_adj == -100  # clamped to the runtime's own score
    assert [(r.type, r.soft) for r in p.rlimits] == [
        ("RLIMIT_NOFILE", 20000),
        ("RLIMIT_NPROC", 50000),
    ]
    assert violations(g.spec, Schema.RUNTIME_CONFIG) == []
    unclamped = generate(
        ContainerOptions(
            rootfs=str(tiny_rootfs), image=image, oom_score_adj=-500, restrict_oom_score_adj=False
        ),
        host=HOST,
    )
    assert unclamped.spec.process.oom_score_adj == -500  # type: ignore[union-attr]

    with pytest.raises(RunAsNonRootError):
        generate(
            ContainerOptions(
                rootfs=str(tiny_rootfs),
                command=["x"],
                security=SecurityOptions(run_as_non_root=True),
            ),
            host=HOST,
        )
    assert (
        generate(
            ContainerOptions(
                rootfs=str(tiny_rootfs),
                command=["x"],
                user="web",
                security=SecurityOptions(run_as_non_root=True),
            ),
            host=HOST,
        ).user.uid
        == 33
    )
    with pytest.raises(InvalidArgumentError, match="hostname"):
        generate(
            ContainerOptions(
                rootfs=str(tiny_rootfs),
                command=["x"],
                hostname="h",
                namespaces=NamespaceOptions(uts=NamespaceOption.node()),
            ),
            host=HOST,
        )
    with pytest.raises(InvalidArgumentError, match="AppArmor"):
        generate(
            ContainerOptions(
                rootfs=str(tiny_rootfs),
                command=["x"],
                security=SecurityOptions(apparmor_profile="localhost/p"),
            ),
            host=HOST,
        )
    aa = generate(
        ContainerOptions(
            rootfs=str(tiny_rootfs),
            command=["x"],
            security=SecurityOptions(apparmor_profile="runtime/default"),
        ),
        host=HostInfo(**{**HOST.__dict__, "apparmor": True}),
    )
    assert aa.spec.process.apparmor_profile == "crid-default"  # type: ignore[union-attr]
    # Privileged: no AppArmor profile at all, even a named one (as CRI-O).
    privileged = generate(
        ContainerOptions(
            rootfs=str(tiny_rootfs),
            command=["x"],
            security=SecurityOptions(privileged=True, apparmor_profile="localhost/p"),
        ),
        host=HostInfo(**{**HOST.__dict__, "apparmor": True}),
    )
    assert privileged.spec.process.apparmor_profile == ""  # type: ignore[union-attr]


def test_builder_write(tiny_rootfs: Path, tmp_path: Path) -> None:
    g = generate(ContainerOptions(rootfs=str(tiny_rootfs), command=["x"]), host=HOST)
    path = g.write(tmp_path)
    assert json.loads(path.read_text()) == g.spec.to_dict()


caps = st.sampled_from(["ALL", *ALL_CAPABILITIES, "net_raw", "chown"])
_EMPTY_ROOTFS = tempfile.mkdtemp(prefix="ocispec-empty-rootfs-")
atexit.register(os.rmdir, _EMPTY_ROOTFS)


@settings(max_examples=40, deadline=None)
@given(
    privileged=st.booleans(),
    add=st.lists(caps, max_size=3),
    drop=st.lists(caps, max_size=3),
    readonly=st.booleans(),
    nnp=st.booleans(),
    seccomp=st.sampled_from([SeccompProfileType.RUNTIME_DEFAULT, SeccompProfileType.UNCONFINED]),
    net=st.sampled_from(["private", "node", "pod"]),
    hostname=st.sampled_from(["", "web-1"]),
    memory=st.one_of(st.none(), st.integers(1 << 20, 1 << 40)),
    oom=st.one_of(st.none(), st.integers(-1000, 1000)),
    userns=st.booleans(),
)
def test_every_generated_config_validates(
    privileged, add, drop, readonly, nnp, seccomp, net, hostname, memory, oom, userns
) -> None:  # type: ignore[no-untyped-def]
    network = {
        "private": NamespaceOption.private(),
        "node": NamespaceOption.node(),
        "pod": NamespaceOption.pod("/run/netns/p"),
    }[net]
    opts = ContainerOptions(
        rootfs=_EMPTY_ROOTFS,
        command=["sh"],
        hostname=hostname,
        oom_score_adj=oom,
        resources=ResourceOptions(memory_limit=memory),
        security=SecurityOptions(
            privileged=privileged,
            capabilities_add=[a for a in add if a.upper() != "CAP_SYS_RESOURCE"],
            capabilities_drop=drop,
            readonly_rootfs=readonly,
            no_new_privileges=nnp,
            seccomp=SeccompOptions(type=seccomp, default_profile_path=""),
        ),
        namespaces=NamespaceOptions(
            network=network, user=UserNamespace.mapped(100000) if userns else None
        ),
    )
    g = generate(opts, host=HOST)
    assert violations(g.spec, Schema.RUNTIME_CONFIG) == []
    again = type(g.spec).from_json(g.spec.to_json())
    assert again == g.spec
