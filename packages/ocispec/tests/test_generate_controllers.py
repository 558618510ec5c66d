"""Leaving out resources the host has no cgroup controller for (restrict_resources and the
generator's use of HostInfo.cgroup_controllers)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ocispec import Schema, violations
from ocispec.generate import (
    CgroupControllers,
    ContainerOptions,
    HostInfo,
    ResourceOptions,
    build_resources,
    generate,
    restrict_resources,
)
from ocispec.image import ExecutionConfig
from ocispec.runtime import DeviceCgroup, InterfacePriority, Network, Rdma, Resources

V1_ALL = frozenset(
    {"cpu", "cpuacct", "cpuset", "memory", "devices", "blkio", "pids", "hugetlb", "freezer"}
)
V2_ALL = frozenset({"cpu", "cpuset", "memory", "io", "pids", "hugetlb", "rdma", "misc"})

# What the kubelet sends for a Burstable container on v1 with swap accounting.
KUBELET_V1 = ResourceOptions(
    cpu_shares=102,
    cpu_quota=50000,
    cpu_period=100000,
    memory_limit=64 << 20,
    memory_swap=64 << 20,
    hugepage_limits={"2MB": 0, "1GB": 0},
    devices=[DeviceCgroup(allow=False, access="rwm")],
)


def v1(*missing: str, swap: bool = True) -> CgroupControllers:
    return CgroupControllers(available=V1_ALL - set(missing), swap=swap)


def v2(*missing: str, swap: bool = True) -> CgroupControllers:
    return CgroupControllers(available=V2_ALL - set(missing), unified=True, swap=swap)


def test_everything_available_changes_nothing() -> None:
    built = build_resources(KUBELET_V1, cgroup_version=1)
    kept, dropped = restrict_resources(built, v1())
    assert kept is built and dropped == ()


def test_hybrid_host_without_hugetlb_mount_drops_only_the_hugepage_limits() -> None:
    built = build_resources(KUBELET_V1, cgroup_version=1)
    kept, dropped = restrict_resources(built, v1("hugetlb"))
    assert kept == dataclasses.replace(built, hugepage_limits=())
    assert dropped == ("hugepageLimits 1GB,2MB (no hugetlb controller)",)
    assert "hugepageLimits" not in kept.to_dict()


def test_each_v1_controller_takes_its_fields() -> None:
    built = build_resources(
        dataclasses.replace(KUBELET_V1, cpuset_cpus="0", pids_limit=100, blkio_weight=500),
        cgroup_version=1,
    )
    kept, dropped = restrict_resources(built, v1("cpu"))
    assert kept.cpu is not None and kept.cpu.cpus == "0"
    assert (kept.cpu.shares, kept.cpu.quota, kept.cpu.period) == (None, None, None)
    assert dropped == ("cpu.shares/quota/period (no cpu controller)",)

    kept, dropped = restrict_resources(built, v1("cpu", "cpuset"))
    assert kept.cpu is None and len(dropped) == 2

    kept, _ = restrict_resources(built, v1("memory"))
    assert kept.memory is None
    kept, dropped = restrict_resources(built, v1(swap=False))
    assert kept.memory is not None and kept.memory.limit == 64 << 20 and kept.memory.swap is None
    assert dropped == ("memory.swap (no swap accounting)",)

    kept, _ = restrict_resources(built, v1("pids", "blkio", "devices"))
    assert (kept.pids, kept.block_io, kept.devices) == (None, None, ())
    assert kept.cpu == built.cpu and kept.memory == built.memory


def test_network_and_rdma() -> None:
    res = Resources(
        network=Network(class_id=7, priorities=[InterfacePriority(name="eth0", priority=1)]),
        rdma={"mlx5_0": Rdma(hca_handles=3)},
    )
    kept, dropped = restrict_resources(res, v1())
    assert kept.network is None and not kept.rdma and len(dropped) == 3
    kept, dropped = restrict_resources(res, CgroupControllers(available=V1_ALL | {"net_cls"}))
    assert kept.network == Network(class_id=7)


def test_v2_unified_keys_follow_their_controller() -> None:
    opts = ResourceOptions(
        memory_limit=64 << 20,
        blkio_weight=100,
        unified={
            "memory.oom.group": "1",
            "memory.high": "50000000",
            "memory.swap.max": "0",
            "hugetlb.2MB.max": "0",
            "cgroup.freeze": "0",
            "misc.max": "x 1",
        },
    )
    built = build_resources(opts, cgroup_version=2)
    kept, dropped = restrict_resources(built, v2("hugetlb", "misc", swap=False))
    assert dict(kept.unified) == {
        "memory.oom.group": "1",
        "memory.high": "50000000",
        "cgroup.freeze": "0",
    }
    assert kept.block_io == built.block_io  # io is there
    assert set(dropped) == {
        "unified hugetlb.2MB.max (no hugetlb controller)",
        "unified misc.max (no misc controller)",
        "unified memory.swap.max (no swap accounting)",
    }
    kept, _ = restrict_resources(built, v2("memory", "io"))
    assert kept.memory is None and kept.block_io is None
    assert set(kept.unified) == {"hugetlb.2MB.max", "cgroup.freeze", "misc.max"}
    # Device rules are eBPF on v2: never left out.
    with_devices = dataclasses.replace(built, devices=(DeviceCgroup(allow=False, access="rwm"),))
    kept, _ = restrict_resources(
        with_devices, CgroupControllers(available=frozenset(), unified=True)
    )
    assert kept.devices == with_devices.devices


def test_generator_leaves_out_and_reports(tmp_path: Path) -> None:
    host = HostInfo(
        arch="amd64",
        kernel="6.1.0",
        cgroup_version=1,
        bounding_capabilities=("CAP_CHOWN",),
        sys_resource=False,
        oom_score_adj=0,
        cgroup_controllers=v1("hugetlb"),
    )
    options = ContainerOptions(
        rootfs=str(tmp_path),
        image=ExecutionConfig(cmd=["/bin/true"]),
        resources=KUBELET_V1,
    )
    generated = generate(options, host=host)
    resources = generated.spec.linux.resources if generated.spec.linux else None
    assert resources is not None and resources.hugepage_limits == ()
    assert resources.memory is not None and resources.memory.limit == 64 << 20
    assert generated.dropped_resources == ("hugepageLimits 1GB,2MB (no hugetlb controller)",)
    assert violations(generated.spec, Schema.RUNTIME_CONFIG) == []
    # Unknown controllers (None): nothing is left out.
    everything = generate(options, host=dataclasses.replace(host, cgroup_controllers=None))
    assert everything.dropped_resources == ()
    linux = everything.spec.linux
    assert linux is not None and linux.resources is not None
    assert len(linux.resources.hugepage_limits) == 2
