"""crid.stats pieces without processes: cgroup paths, CPU rates, record selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from crid.state import (
    Container,
    ContainerMeta,
    ContainerState,
    PodMeta,
    Registry,
    Sandbox,
    SandboxState,
)
from crid.stats import (
    METRIC_DESCRIPTORS,
    CpuRates,
    cgroup_dir,
    labels_match,
    mountpoint_of,
    parse_net_dev,
    select_containers,
    select_sandboxes,
    slice_dir,
)


def test_slice_and_cgroup_dirs() -> None:
    assert slice_dir("kubepods-besteffort-pod12.slice") == (
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice"
    )
    assert slice_dir("-.slice") == "/"
    assert cgroup_dir("kubepods-pod1.slice:crid:abc") == (
        "/kubepods.slice/kubepods-pod1.slice/crid-abc.scope"
    )
    assert cgroup_dir("/kubepods/pod1/crid-abc") == "/kubepods/pod1/crid-abc"
    assert cgroup_dir("kubepods/pod1") == "/kubepods/pod1"
    assert cgroup_dir("kubepods-pod1.slice") == "/kubepods.slice/kubepods-pod1.slice"


def test_cpu_rates_need_a_previous_sample() -> None:
    rates = CpuRates(min_interval_ns=10)
    assert rates.rate("/a", 1_000_000_000, 5_000) is None  # first sample: no rate
    # 0.5 s of CPU over 1 s: half a core.
    assert rates.rate("/a", 2_000_000_000, 500_005_000) == 500_000_000
    assert rates.rate("/a", 2_000_000_005, 900_000_000) == 500_000_000  # too soon: last rate
    assert rates.rate("/b", 2_000_000_000, 7) is None  # another cgroup, its own history
    assert rates.rate("/a", 3_000_000_000, 1) is None  # counter went back: a new cgroup
    rates.forget_except({"/b"})
    assert len(rates) == 1
    assert rates.rate("/b", 3_000_000_000, None) is None
    assert len(rates) == 0


def test_labels_match() -> None:
    assert labels_match({"a": "1", "b": "2"}, {"a": "1"})
    assert not labels_match({"a": "1"}, {"a": "2"})
    assert not labels_match({}, {"a": ""})
    assert labels_match({}, {})


async def test_selection_by_id_prefix_pod_state_and_labels(tmp_path: Path) -> None:
    registry = Registry.open(tmp_path / "state.db")
    try:
        pods = []
        for i, (pid, state) in enumerate(
            [("aa11", SandboxState.READY), ("aa22", SandboxState.NOTREADY)]
        ):
            pod = Sandbox(
                id=pid + "0" * 60,
                name=f"pod{i}",
                meta=PodMeta(name=f"pod{i}", uid=str(i), namespace="ns"),
                state=state,
                created_at=i,
                labels={"app": "web" if i == 0 else "db"},
            )
            await registry.save_sandbox(pod)
            pods.append(pod)
        for i, state in enumerate([ContainerState.RUNNING, ContainerState.EXITED]):
            await registry.save_container(
                Container(
                    id=f"c{i}" + "f" * 62,
                    name=f"c{i}",
                    sandbox_id=pods[i].id,
                    meta=ContainerMeta(name=f"c{i}"),
                    state=state,
                    created_at=i,
                    labels={"tier": str(i)},
                )
            )
        assert [s.meta.name for s in select_sandboxes(registry, id_or_prefix="aa1")] == ["pod0"]
        assert select_sandboxes(registry, id_or_prefix="aa") == []  # ambiguous: none
        assert [s.meta.name for s in select_sandboxes(registry, labels={"app": "db"})] == ["pod1"]
        ready = select_sandboxes(registry, states=[SandboxState.READY])
        assert [s.meta.name for s in ready] == ["pod0"]
        assert [c.name for c in select_containers(registry, sandbox_id="aa22")] == ["c1"]
        assert [c.name for c in select_containers(registry, id_or_prefix="c0")] == ["c0"]
        running = select_containers(registry, states=[ContainerState.RUNNING])
        assert [c.name for c in running] == ["c0"]
        assert [c.name for c in select_containers(registry, labels={"tier": "1"})] == ["c1"]
        assert select_containers(registry, sandbox_id="nope") == []
    finally:
        registry.close()


def test_mountpoint_of_finds_the_file_system_root(tmp_path: Path) -> None:
    mount = Path(mountpoint_of(tmp_path))
    assert mount.stat().st_dev == tmp_path.stat().st_dev
    assert mount == Path("/") or mount.parent.stat().st_dev != mount.stat().st_dev
    assert tmp_path.resolve().is_relative_to(mount)


@pytest.mark.parametrize("descriptor", METRIC_DESCRIPTORS, ids=lambda d: d.name)
def test_descriptors_are_cadvisor_style(descriptor: object) -> None:
    name = descriptor.name  # type: ignore[attr-defined]
    assert name.startswith("container_")
    keys = descriptor.label_keys  # type: ignore[attr-defined]
    assert keys[:6] == ("container", "id", "image", "name", "namespace", "pod")
    assert len(set(keys)) == len(keys)


NET_DEV = "\n".join(
    [
        "Inter-|   Receive                 |  Transmit",
        " face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs ...",
        "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0",
        "  eth0: 123456 100 2 0 0 0 0 0 65432 90 1 0 0 0 0 0",
    ]
)


def test_parse_net_dev_skips_loopback() -> None:
    [eth0] = parse_net_dev(NET_DEV)
    assert (eth0.name, eth0.rx_bytes, eth0.rx_errors, eth0.tx_bytes, eth0.tx_errors) == (
        "eth0",
        123456,
        2,
        65432,
        1,
    )


def test_stats_messages_keep_zero_apart_from_unknown_and_are_built_once() -> None:
    from crid.services.stats import _StatsMessages
    from crid.stats import (
        ContainerUsage,
        CpuUsage,
        FsUsage,
        InterfaceUsage,
        MemoryUsage,
        NetworkUsage,
        SandboxUsage,
    )

    sandbox = Sandbox(
        id="p" * 64,
        name="k8s_web",
        meta=PodMeta(name="web", uid="u1", namespace="ns", attempt=2),
        state=SandboxState.READY,
        created_at=1,
        labels={"app": "web"},
    )
    record = Container(
        id="c" * 64,
        name="k8s_c",
        sandbox_id=sandbox.id,
        meta=ContainerMeta(name="c", attempt=1),
        state=ContainerState.RUNNING,
        created_at=1,
        labels={"role": "main"},
    )
    cpu = CpuUsage(timestamp_ns=5, usage_core_ns=0, usage_nano_cores=None)
    memory = MemoryUsage(timestamp_ns=5, working_set_bytes=0, usage_bytes=7)
    layer = FsUsage(timestamp_ns=6, mountpoint="/var", used_bytes=0, inodes_used=3)
    usage = ContainerUsage(
        container_id=record.id, cgroup="/c", cpu=cpu, memory=memory, writable_layer=layer
    )
    eth0 = InterfaceUsage(name="eth0", rx_bytes=0, rx_errors=0, tx_bytes=9, tx_errors=1)
    network = NetworkUsage(timestamp_ns=8, interfaces=(eth0,), default="eth0")
    pod_usage = SandboxUsage(
        sandbox_id=sandbox.id,
        cgroup="/p",
        cpu=cpu,
        memory=memory,
        process_count=0,
        network=network,
        containers=(usage,),
    )
    messages = _StatsMessages()
    stats = messages.sandbox(pod_usage, sandbox, [record])
    assert messages.sandbox(pod_usage, sandbox, [record]) is stats  # built once
    assert stats.attributes.metadata.attempt == 2
    assert dict(stats.attributes.labels) == {"app": "web"}
    linux = stats.linux
    assert linux.cpu.HasField("usage_core_nano_seconds")  # 0 is a value...
    assert not linux.cpu.HasField("usage_nano_cores")  # ...None is unknown: unset
    assert linux.memory.HasField("working_set_bytes")
    assert not linux.memory.HasField("available_bytes")
    assert linux.process.HasField("process_count")
    assert linux.network.default_interface.tx_bytes.value == 9
    assert linux.network.default_interface.HasField("rx_bytes")
    [inner] = linux.containers
    assert inner.writable_layer.HasField("used_bytes")
    assert inner.writable_layer.fs_id.mountpoint == "/var"
    alone = messages.container(usage, record)
    assert alone == inner  # built with the pod, answered alone by ListContainerStats
    assert messages.container(usage, record) is alone
    # A new sample (or record) is a new message; a complete batch forgets other pods.
    newer = SandboxUsage(sandbox_id=sandbox.id, cgroup="/p", cpu=cpu, memory=memory)
    assert messages.sandbox(newer, sandbox, []) is not stats
    messages.render([], complete=True)
    assert len(messages) == 0
