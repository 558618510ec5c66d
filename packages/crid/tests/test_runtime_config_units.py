"""crid.control pieces without a daemon: pod CIDR validation, pod cgroup files for v1/v2,
CRI resources to ResourceOptions."""

from __future__ import annotations

import pytest

from crid._cri.v1 import api_pb2
from crid.control import pod_resource_files, validate_pod_cidr
from crid.control.resources import usable_files
from crid.errors import InvalidRequestError
from crid.services.runtime_config import resource_options
from ocispec.generate import CgroupControllers, ResourceOptions


def test_pod_cidr_validation_normalizes_and_refuses_garbage() -> None:
    assert validate_pod_cidr("10.244.1.7/24") == "10.244.1.0/24"
    assert validate_pod_cidr(" 10.0.0.0/16 , fd00::/64 ") == "10.0.0.0/16,fd00::/64"
    assert validate_pod_cidr("") == ""
    for bad in ("10.0.0.0/33", "nonsense", "10.0.0.0/8,zz"):
        with pytest.raises(InvalidRequestError, match="pod CIDR"):
            validate_pod_cidr(bad)


def test_pod_resource_files_v1_and_v2() -> None:
    options = ResourceOptions(
        cpu_shares=1024,
        cpu_quota=50000,
        cpu_period=100000,
        memory_limit=1 << 30,
        cpuset_cpus="0-1",
    )
    assert pod_resource_files(options, unified=False) == [
        ("cpu", "cpu.shares", "1024"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("memory", "memory.limit_in_bytes", str(1 << 30)),
        ("cpuset", "cpuset.cpus", "0-1"),
    ]
    assert pod_resource_files(options, unified=True) == [
        ("cpu", "cpu.weight", "39"),
        ("cpu", "cpu.max", "50000 100000"),
        ("memory", "memory.max", str(1 << 30)),
        ("cpuset", "cpuset.cpus", "0-1"),
    ]
    unlimited = ResourceOptions(cpu_quota=-1)
    assert pod_resource_files(unlimited, unified=True) == [("cpu", "cpu.max", "max 100000")]
    assert pod_resource_files(ResourceOptions(), unified=False) == []


def test_pod_files_of_missing_controllers_are_left_out() -> None:
    options = ResourceOptions(cpu_shares=1024, memory_limit=1 << 30, cpuset_cpus="0")
    files = pod_resource_files(options, unified=False)
    no_cpuset = CgroupControllers(available=frozenset({"cpu", "memory"}))
    assert usable_files(files, no_cpuset) == (
        [("cpu", "cpu.shares", "1024"), ("memory", "memory.limit_in_bytes", str(1 << 30))],
        ["cpuset.cpus (no cpuset controller)"],
    )
    nothing = CgroupControllers(available=frozenset(), unified=True)
    kept, dropped = usable_files(pod_resource_files(options, unified=True), nothing)
    assert kept == [] and len(dropped) == 3


def test_cri_resources_to_options() -> None:
    options = resource_options(
        api_pb2.LinuxContainerResources(
            cpu_shares=2,
            cpu_quota=-1,
            memory_limit_in_bytes=64 << 20,
            memory_swap_limit_in_bytes=-1,
            hugepage_limits=[api_pb2.HugepageLimit(page_size="2MB", limit=4 << 20)],
            unified={"memory.high": "50M"},
        )
    )
    assert options.cpu_shares == 2
    assert options.cpu_quota == -1
    assert options.cpu_period is None  # 0 means unset
    assert options.memory_limit == 64 << 20
    assert options.memory_swap == -1
    assert dict(options.hugepage_limits) == {"2MB": 4 << 20}
    assert dict(options.unified) == {"memory.high": "50M"}
    with pytest.raises(InvalidRequestError, match="cpu_quota"):
        resource_options(api_pb2.LinuxContainerResources(cpu_quota=-2))
