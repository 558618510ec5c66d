"""The pod metrics' readers and builders without processes: cgroup v1 and v2 file trees
written in tmp_path (this host runs v1; v2 hosts read the other files), parsers, groups."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crid._cri.v1 import api_pb2
from crid.cgroups import Hierarchies, read_details
from crid.cgroups.details import parse_blkio, parse_io_stat, parse_pressure
from crid.config import POD_METRIC_GROUPS, load_config
from crid.errors import ConfigError
from crid.services._metrics_messages import MetricsMessages, encode_repeated
from crid.state import Container, ContainerMeta, ContainerState, PodMeta, Sandbox, SandboxState
from crid.stats import (
    ContainerUsage,
    CpuUsage,
    FsInfo,
    FsUsage,
    InterfaceUsage,
    MemoryUsage,
    NetworkUsage,
    ProcessDetails,
    SandboxUsage,
    cgroup_pids,
    container_metrics,
    descriptors_for,
    device_name,
    host_groups,
    max_open_files,
    sandbox_metrics,
)

CG = "/kubepods/pod1/crid-abc"
UNLIMITED_V1 = "9223372036854771712"
PSI = "some avg10=1.00 total={some}\nfull avg10=0.00 total={full}\n"


def write(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def v1_tree(root: Path) -> Hierarchies:
    controllers = ("cpu", "cpuacct", "memory", "blkio", "pids", "hugetlb")
    # Hybrid, as here: v1 controllers plus an empty cgroup2 tree that still tracks PSI.
    hierarchies = Hierarchies(v1={c: root / c for c in controllers}, v2=root / "unified")
    rel = CG.strip("/")
    write(
        root / "unified" / rel,
        {
            "cpu.pressure": PSI.format(some=2_500_000, full=1_000_000),
            "memory.pressure": PSI.format(some=0, full=0),
            "io.pressure": PSI.format(some=3_000_000, full=2_999_999),
        },
    )
    write(
        root / "cpu" / rel,
        {
            "cpu.stat": "nr_periods 40\nnr_throttled 7\nthrottled_time 2500000000\n",
            "cpu.cfs_period_us": "100000\n",
            "cpu.cfs_quota_us": "40000\n",
            "cpu.shares": "512\n",
        },
    )
    write(
        root / "cpuacct" / rel,
        {"cpuacct.usage_user": "3200000000\n", "cpuacct.usage_sys": "900000000\n"},
    )
    write(
        root / "memory" / rel,
        {
            "memory.stat": (
                "cache 100\npgfault 11\npgmajfault 1\ntotal_cache 8388608\n"
                "total_mapped_file 4096\ntotal_pgfault 30\ntotal_pgmajfault 2\ntotal_swap 0\n"
            ),
            "memory.usage_in_bytes": "20000000\n",
            "memory.memsw.usage_in_bytes": "20004096\n",
            "memory.kmem.usage_in_bytes": "65536\n",
            "memory.failcnt": "3\n",
            "memory.max_usage_in_bytes": "25000000\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            "memory.limit_in_bytes": "67108864\n",
            "memory.soft_limit_in_bytes": UNLIMITED_V1 + "\n",
            "memory.memsw.limit_in_bytes": UNLIMITED_V1 + "\n",
        },
    )
    write(
        root / "blkio" / rel,
        {
            # CFQ's files empty (another scheduler): the throttle ones are read instead.
            "blkio.io_service_bytes_recursive": "Total 0\n",
            "blkio.io_serviced_recursive": "Total 0\n",
            "blkio.throttle.io_service_bytes_recursive": (
                "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Total 12288\nTotal 12288\n"
            ),
            "blkio.throttle.io_serviced_recursive": "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        },
    )
    write(root / "pids" / rel, {"pids.current": "5\n", "pids.max": "max\n"})
    write(
        root / "hugetlb" / rel,
        {
            "hugetlb.2MB.usage_in_bytes": "2097152\n",
            "hugetlb.2MB.max_usage_in_bytes": "4194304\n",
            "hugetlb.1GB.usage_in_bytes": "0\n",
            "hugetlb.1GB.max_usage_in_bytes": "0\n",
        },
    )
    return hierarchies


def test_v1_details(tmp_path: Path) -> None:
    details = read_details(v1_tree(tmp_path), CG, POD_METRIC_GROUPS)
    cpu = details.cpu
    assert cpu is not None
    assert (cpu.user_ns, cpu.system_ns) == (3_200_000_000, 900_000_000)
    assert (cpu.periods, cpu.throttled_periods, cpu.throttled_ns) == (40, 7, 2_500_000_000)
    assert cpu.quota == 40000
    memory = details.memory
    assert memory is not None
    assert (memory.cache, memory.mapped_file, memory.kernel) == (8388608, 4096, 65536)
    assert memory.swap == 4096  # memsw usage - usage
    assert (memory.failcnt, memory.max_usage, memory.oom_kills) == (3, 25000000, 1)
    assert (memory.pgfault, memory.hierarchy_pgfault) == (11, 30)
    assert (memory.pgmajfault, memory.hierarchy_pgmajfault) == (1, 2)
    spec = details.spec
    assert spec is not None
    assert (spec.cpu_period, spec.cpu_quota, spec.cpu_shares) == (100000, 40000, 512)
    assert (spec.memory_limit, spec.memory_reservation, spec.memory_swap_limit) == (
        67108864,
        0,
        0,
    )
    assert [(e.operation, e.value) for e in details.io_bytes] == [
        ("Read", 4096),
        ("Write", 8192),
        ("Sync", 12288),
        ("Total", 12288),
    ]
    assert [(e.operation, e.value) for e in details.io_operations] == [("Read", 1), ("Write", 2)]
    assert (details.threads, details.threads_max) == (5, 0)
    assert [(h.pagesize, h.usage, h.max_usage) for h in details.hugetlb] == [
        ("1GB", 0, 0),
        ("2MB", 2097152, 4194304),
    ]
    psi = details.pressure
    assert psi is not None
    assert (psi.cpu_some_us, psi.cpu_full_us) == (2_500_000, 1_000_000)
    assert (psi.memory_some_us, psi.io_full_us) == (0, 2_999_999)


def test_only_the_groups_asked_for_are_read(tmp_path: Path) -> None:
    details = read_details(v1_tree(tmp_path), CG, ["cpu"])
    assert details.cpu is not None
    assert details.memory is None
    assert details.spec is None
    assert details.io_bytes == ()
    assert details.hugetlb == ()
    assert details.threads is None
    assert details.pressure is None
    oom_only = read_details(v1_tree(tmp_path), CG, ["oom"])
    assert oom_only.memory is not None and oom_only.memory.oom_kills == 1


def test_missing_files_are_unknown_not_errors(tmp_path: Path) -> None:
    hierarchies = Hierarchies(v1={"cpu": tmp_path / "cpu", "memory": tmp_path / "memory"})
    details = read_details(hierarchies, "/gone", POD_METRIC_GROUPS)
    assert details.cpu is not None and details.cpu.user_ns is None
    assert details.memory is not None and details.memory.cache is None
    assert details.memory.oom_kills is None
    assert details.io_bytes == ()
    assert details.threads is None


def v2_tree(root: Path, *, peak: bool = True) -> Hierarchies:
    files = {
        "cpu.stat": (
            "usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\n"
            "nr_periods 20\nnr_throttled 4\nthrottled_usec 300000\n"
        ),
        "cpu.max": "50000 100000\n",
        "cpu.weight": "39\n",
        "memory.stat": (
            "anon 1000\nfile 8192\nkernel 12288\nfile_mapped 4096\npgfault 9\npgmajfault 1\n"
        ),
        "memory.current": "30000\n",
        "memory.swap.current": "512\n",
        "memory.events": "low 0\nhigh 0\nmax 6\noom 1\noom_kill 1\n",
        "memory.max": "67108864\n",
        "memory.low": "1048576\n",
        "memory.swap.max": "67108864\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        "pids.current": "3\n",
        "pids.max": "100\n",
        "hugetlb.2MB.current": "2097152\n",
        "hugetlb.2MB.max": "max\n",
        "hugetlb.2MB.rsvd.current": "0\n",
        "cpu.pressure": PSI.format(some=7_000_000, full=0),
    }
    if peak:
        files["memory.peak"] = "40000\n"
    write(root / CG.strip("/"), files)
    return Hierarchies(v2=root)


def test_v2_details(tmp_path: Path) -> None:
    hierarchies = v2_tree(tmp_path)
    assert hierarchies.unified
    details = read_details(hierarchies, CG, POD_METRIC_GROUPS)
    cpu = details.cpu
    assert cpu is not None
    assert (cpu.user_ns, cpu.system_ns) == (4_000_000_000, 1_000_000_000)
    assert (cpu.periods, cpu.throttled_periods, cpu.throttled_ns) == (20, 4, 300_000_000)
    assert cpu.quota == 50000
    memory = details.memory
    assert memory is not None
    assert (memory.cache, memory.kernel, memory.mapped_file, memory.swap) == (
        8192,
        12288,
        4096,
        512,
    )
    assert (memory.failcnt, memory.max_usage, memory.oom_kills) == (6, 40000, 1)
    assert (memory.pgfault, memory.hierarchy_pgfault) == (9, 9)
    spec = details.spec
    assert spec is not None
    assert (spec.cpu_period, spec.cpu_quota) == (100000, 50000)
    assert spec.cpu_shares == 998  # runc's weight of 1024 shares, converted back (lossy)
    assert spec.memory_limit == 67108864
    assert spec.memory_reservation == 1048576
    assert spec.memory_swap_limit == 2 * 67108864  # memory + swap, as v1's memsw
    assert [(e.operation, e.value) for e in details.io_bytes] == [
        ("Read", 4096),
        ("Write", 8192),
        ("Discard", 0),
    ]
    assert [(e.operation, e.value) for e in details.io_operations][:2] == [
        ("Read", 1),
        ("Write", 2),
    ]
    assert (details.threads, details.threads_max) == (3, 100)
    assert [(h.pagesize, h.usage, h.max_usage) for h in details.hugetlb] == [("2MB", 2097152, None)]
    assert details.pressure is not None
    assert (details.pressure.cpu_some_us, details.pressure.io_some_us) == (7_000_000, None)


def test_v2_without_peak_or_limits(tmp_path: Path) -> None:
    hierarchies = v2_tree(tmp_path, peak=False)
    directory = tmp_path / CG.strip("/")
    (directory / "cpu.max").write_text("max 100000\n")
    (directory / "memory.max").write_text("max\n")
    (directory / "pids.max").write_text("max\n")
    details = read_details(hierarchies, CG, ["cpu", "memory", "spec", "process"])
    assert details.cpu is not None and details.cpu.quota is None
    assert details.memory is not None and details.memory.max_usage is None
    assert details.spec is not None
    assert (details.spec.cpu_quota, details.spec.cpu_period) == (None, 100000)
    assert details.spec.memory_limit == 0
    assert details.spec.memory_swap_limit == 0  # unlimited memory: unlimited both
    assert details.threads_max == 0


def test_parsers() -> None:
    assert parse_blkio("8:16 Write 10\ngarbage\nTotal 10\n8:x Read 1\n")[0].minor == 16
    assert len(parse_blkio("8:16 Write 10\ngarbage\nTotal 10\n8:x Read 1\n")) == 1
    assert parse_blkio(None) == []
    by_bytes, by_ops = parse_io_stat("253:1 rbytes=5 wios=2 unknown=3\nbad line\n")
    assert [(e.major, e.minor, e.operation, e.value) for e in by_bytes] == [(253, 1, "Read", 5)]
    assert [(e.operation, e.value) for e in by_ops] == [("Write", 2)]
    limits = (
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max open files            1024                 1048576              files\n"
    )
    assert max_open_files(limits) == 1024
    assert max_open_files(limits.replace("1024 ", "unlimited")) is None
    assert max_open_files("") is None
    assert parse_pressure(PSI.format(some=5, full=6)) == {"some": 5, "full": 6}
    assert parse_pressure("some avg10=0.00 total=x\n") == {}
    assert parse_pressure(None) == {}


def test_device_names() -> None:
    vda = Path("/sys/dev/block")
    for entry in sorted(vda.iterdir()) if vda.exists() else []:
        major, minor = (int(x) for x in entry.name.split(":"))
        assert device_name(major, minor).startswith("/dev/")
        break
    assert device_name(4095, 1048575) == "4095:1048575"  # no such device


def test_cgroup_pids_walk_the_subtree(tmp_path: Path) -> None:
    hierarchies = Hierarchies(v1={"pids": tmp_path})
    write(tmp_path / "pod", {"cgroup.procs": ""})
    write(tmp_path / "pod" / "a", {"cgroup.procs": "12\n10\n"})
    write(tmp_path / "pod" / "b" / "c", {"cgroup.procs": "11\n"})
    assert cgroup_pids(hierarchies, "/pod") == [10, 11, 12]
    assert cgroup_pids(hierarchies, "/pod/b") == [11]
    assert cgroup_pids(Hierarchies(), "/pod") == []


def records() -> tuple[Sandbox, Container]:
    sandbox = Sandbox(
        id="p" * 64,
        name="k8s_web",
        meta=PodMeta(name="web", uid="u1", namespace="ns"),
        state=SandboxState.READY,
        created_at=1_700_000_000 * 10**9,
    )
    container = Container(
        id="c" * 64,
        name="k8s_c",
        sandbox_id=sandbox.id,
        meta=ContainerMeta(name="app"),
        state=ContainerState.RUNNING,
        created_at=1_700_000_001 * 10**9,
        started_at=1_700_000_002 * 10**9,
        image="example/app:1",
    )
    return sandbox, container


def usages(tmp_path: Path) -> SandboxUsage:
    details = read_details(v1_tree(tmp_path), CG, POD_METRIC_GROUPS)
    ts = 1_700_000_100 * 10**9
    cpu = CpuUsage(timestamp_ns=ts, usage_core_ns=4_100_000_000)
    memory = MemoryUsage(timestamp_ns=ts, usage_bytes=20000000, working_set_bytes=1, rss_bytes=2)
    procs = ProcessDetails(processes=2, threads=4, file_descriptors=9, sockets=1, max_open_files=64)
    ctr = ContainerUsage(
        container_id="c" * 64,
        cgroup=CG,
        cpu=cpu,
        memory=memory,
        writable_layer=FsUsage(timestamp_ns=ts, mountpoint="/", used_bytes=77, inodes_used=3),
        details=details,
        processes=procs,
        filesystem=FsInfo(
            timestamp_ns=ts, device="/dev/vda", capacity_bytes=1000, inodes_total=50, inodes_free=20
        ),
    )
    eth0 = InterfaceUsage(
        name="eth0", rx_bytes=5, rx_errors=0, tx_bytes=6, tx_errors=0, rx_packets=1, tx_packets=2
    )
    return SandboxUsage(
        sandbox_id="p" * 64,
        cgroup="/kubepods/pod1",
        cpu=cpu,
        memory=memory,
        network=NetworkUsage(timestamp_ns=ts, interfaces=(eth0,), default="eth0"),
        containers=(ctr,),
        details=details,
        processes=procs,
        detailed=True,
    )


def test_every_descriptor_of_a_full_sample_has_values_with_its_labels(tmp_path: Path) -> None:
    sandbox, container = records()
    pod_usage = usages(tmp_path)
    samples = [
        *sandbox_metrics(pod_usage, sandbox, POD_METRIC_GROUPS),
        *container_metrics(pod_usage.containers[0], container, sandbox, POD_METRIC_GROUPS),
    ]
    keys = {d.name: d.label_keys for d in descriptors_for(POD_METRIC_GROUPS)}
    assert {s.name for s in samples} == set(keys)
    for sample in samples:
        assert len(sample.label_values) == len(keys[sample.name])
    by = {(s.name, s.label_values[6:]): s for s in samples if s.label_values[0] == "app"}
    assert by["container_start_time_seconds", ()].value == 1_700_000_002
    assert by["container_last_seen", ()].value == 1_700_000_100
    assert by["container_cpu_user_seconds_total", ()].value == 3  # whole seconds
    assert by["container_cpu_cfs_throttled_seconds_total", ()].value == 2
    assert by["container_blkio_device_usage_total", ("8:0", "8", "0", "Write")].value == 8192
    device = device_name(8, 0)
    assert by["container_fs_writes_bytes_total", (device,)].value == 8192
    assert by["container_fs_reads_total", (device,)].value == 1
    assert by["container_fs_usage_bytes", ("/dev/vda",)].value == 77
    assert by["container_memory_failures_total", ("pgfault", "hierarchy")].value == 30
    assert by["container_threads", ()].value == 5  # pids.current wins over /proc's count
    assert by["container_hugetlb_max_usage_bytes", ("2MB",)].value == 4194304
    assert by["container_ulimits_soft", ("max_open_files",)].value == 64
    assert by["container_pressure_cpu_waiting_seconds_total", ()].value == 2
    assert by["container_pressure_io_stalled_seconds_total", ()].value == 2  # whole seconds
    pod_level = {s.name: s for s in samples if s.label_values[0] == ""}
    assert pod_level["container_network_transmit_packets_total"].label_values[6:] == ("eth0",)
    assert pod_level["container_start_time_seconds"].value == 1_700_000_000
    assert pod_level["container_memory_usage_bytes"].label_values[:4] == (
        "",
        "/kubepods/pod1",
        "",
        "",  # name: empty for a pod cgroup, as cAdvisor's
    )
    assert "container_fs_usage_bytes" not in pod_level


def test_throttling_only_under_a_quota_and_pod_name_only_without_cgroup(tmp_path: Path) -> None:
    """As cAdvisor: no CFS quota, no container_cpu_cfs_* series (the other CPU series
    stay); a pod without a cgroup is told apart by its id in ``name``."""
    sandbox, container = records()
    pod_usage = usages(tmp_path)
    (tmp_path / "cpu" / CG.strip("/") / "cpu.cfs_quota_us").write_text("-1\n")
    hierarchies = Hierarchies(v1={c: tmp_path / c for c in ("cpu", "cpuacct")})
    details = read_details(hierarchies, CG, ["cpu"])
    assert details.cpu is not None and details.cpu.quota is None
    ctr = dataclasses.replace(pod_usage.containers[0], details=details)
    names = {s.name for s in container_metrics(ctr, container, sandbox, ["cpu"])}
    assert names == {
        "container_last_seen",
        "container_start_time_seconds",
        "container_cpu_usage_seconds_total",
        "container_cpu_user_seconds_total",
        "container_cpu_system_seconds_total",
    }
    no_cgroup = dataclasses.replace(pod_usage, cgroup="")
    [seen, *_] = sandbox_metrics(no_cgroup, sandbox, ["cpu"])
    assert seen.label_values[:4] == ("", "", "", sandbox.id)


def test_groups_without_their_controller_are_left_out() -> None:
    assert host_groups(POD_METRIC_GROUPS, {"cpu", "memory"}) == set(POD_METRIC_GROUPS) - {"hugetlb"}
    assert "hugetlb" in host_groups(["hugetlb", "cpu"], {"hugetlb"})
    messages = MetricsMessages(host_groups(POD_METRIC_GROUPS, {"cpu"}))
    names = {d.name for d in messages.descriptors.descriptors}
    assert "container_hugetlb_usage_bytes" not in names
    assert "container_cpu_usage_seconds_total" in names


def test_excluded_groups_are_neither_described_nor_reported(tmp_path: Path) -> None:
    sandbox, container = records()
    pod_usage = usages(tmp_path)
    messages = MetricsMessages(["network", "oom"])
    names = {d.name for d in messages.descriptors.descriptors}
    assert names == {d.name for d in descriptors_for(["network", "oom"])}
    assert "container_oom_events_total" in names
    assert "container_memory_usage_bytes" not in names
    encoded = messages.pod(pod_usage, sandbox, [container])
    assert messages.pod(pod_usage, sandbox, [container]) is encoded  # once per sample
    built = api_pb2.PodSandboxMetrics.FromString(encoded)
    reported = {m.name for m in built.metrics} | {
        m.name for c in built.container_metrics for m in c.metrics
    }
    assert reported <= names
    assert "container_network_receive_bytes_total" in reported
    assert "container_oom_events_total" in reported
    zero = [m for m in built.metrics if m.name == "container_network_receive_errors_total"]
    assert zero[0].HasField("value") and zero[0].value.value == 0  # 0 is sent, not unset
    messages.render([((sandbox, [container]), pod_usage)], complete=True)
    answer = api_pb2.ListPodSandboxMetricsResponse.FromString(messages.pod_list.response([encoded]))
    assert answer.pod_metrics[0] == built
    messages.render([], complete=True)
    assert len(messages) == 0


def test_metrics_answers_are_the_encoded_pods_joined(tmp_path: Path) -> None:
    """Both list and stream answers are field 1 repeated: the pods' bytes, joined with
    their tags and lengths, parse as the messages they were built from, and the list
    answer is kept while the pods' samples are the same."""
    sandbox, container = records()
    pod_usage = usages(tmp_path)
    messages = MetricsMessages(POD_METRIC_GROUPS)
    built = messages.build(pod_usage, sandbox, [container])
    assert len(built.SerializeToString()) > 300  # a length of two varint bytes
    messages.render([((sandbox, [container]), pod_usage)], complete=True)
    encoded = messages.pod(pod_usage, sandbox, [container])
    answer = messages.pod_list.response([encoded, encoded])
    for kind in (api_pb2.ListPodSandboxMetricsResponse, api_pb2.StreamPodSandboxMetricsResponse):
        parsed = kind.FromString(answer)
        assert list(parsed.ListFields()[0][1]) == [built, built]
        assert parsed.SerializeToString() == answer
    assert messages.pod_list.response([messages.pod(pod_usage, sandbox, [container])] * 2) is answer
    assert encode_repeated([]) == b""


def test_an_unknown_metric_group_is_a_config_error(tmp_path: Path) -> None:
    main = tmp_path / "crid.toml"
    main.write_text('[crid.stats]\nincluded_pod_metrics = ["cpu", "gpu"]\n')
    with pytest.raises(ConfigError, match=r"crid\.stats\.included_pod_metrics.*"):
        load_config(main)
    main.write_text('[crid.stats]\nmetrics_collection_period = "often"\n')
    with pytest.raises(ConfigError, match=r"crid\.stats\.metrics_collection_period.*invalid"):
        load_config(main)
    main.write_text('[crid.stats]\nincluded_pod_metrics = []\nmetrics_collection_period = "1m"\n')
    stats = load_config(main).crid.stats
    assert (stats.included_pod_metrics, stats.metrics_collection_period) == ([], "1m")
