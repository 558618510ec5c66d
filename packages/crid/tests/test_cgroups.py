"""cgroups: hierarchies from mountinfo, pod cgroups in every hierarchy, real usage numbers."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest

from crid.cgroups import (
    Hierarchies,
    container_cgroup_path,
    detect_controllers,
    oom_kills,
    read_stats,
)
from crid.cgroups.stats import memory_limit

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_hybrid_mountinfo() -> None:
    h = Hierarchies.from_mountinfo(HYBRID)
    assert h.v1["cpu"] == h.v1["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert h.v1["name=systemd"] == Path("/sys/fs/cgroup/systemd")
    assert "xattr" not in h.v1
    assert h.v2 == Path("/sys/fs/cgroup/unified")
    assert not h.unified
    assert len(h.roots()) == 5  # co-mounted cpu,cpuacct counted once, unified included
    assert h.controller_path("memory", "/a/b") == Path("/sys/fs/cgroup/memory/a/b")
    assert h.controller_path("io", "/a") is None  # v2-only controller on a hybrid host


def test_unified_mountinfo() -> None:
    h = Hierarchies.from_mountinfo(UNIFIED)
    assert h.unified
    assert h.controller_path("memory", "/kubepods/pod1") == Path("/sys/fs/cgroup/kubepods/pod1")


@pytest.mark.parametrize("text", [HYBRID, UNIFIED])
def test_controller_dir_is_controller_path_as_a_string(text: str) -> None:
    h = Hierarchies.from_mountinfo(text)
    for controller in ("memory", "cpuacct", "pids", "io", "name=systemd"):
        for cgroup in ("/kubepods/pod1/crid-abc", "kubepods/", "/", ""):
            path = h.controller_path(controller, cgroup)
            assert h.controller_dir(controller, cgroup) == (None if path is None else str(path))


def fake_v2(root: Path, controllers: str) -> Hierarchies:
    """A cgroup v2 tree made of plain files: the root lists ``controllers``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    return Hierarchies(v2=root)


def test_v2_controllers_come_from_the_root_cgroup_controllers(tmp_path: Path) -> None:
    h = fake_v2(tmp_path / "cg", "cpuset cpu io memory pids")
    (tmp_path / "cg" / "crid.slice").mkdir()
    (tmp_path / "cg" / "crid.slice" / "memory.swap.max").write_text("max\n")
    found = detect_controllers(h, own_cgroup="/crid.slice")
    assert found.unified and found.swap
    assert found.available == {"cpuset", "cpu", "io", "memory", "pids"}
    assert not found.has("hugetlb")
    # No memory.swap.max where crid runs: no swap accounting.
    (tmp_path / "cg" / "other").mkdir()
    assert not detect_controllers(h, own_cgroup="/other").swap
    # crid in the root cgroup (which never has the file): a child cgroup tells.
    assert detect_controllers(h, own_cgroup="/").swap


def test_v2_without_memory_or_controllers_file(tmp_path: Path) -> None:
    h = fake_v2(tmp_path / "cg", "cpu pids")
    (tmp_path / "cg" / "c").mkdir()
    (tmp_path / "cg" / "c" / "memory.swap.max").write_text("max\n")
    found = detect_controllers(h, own_cgroup="/c")
    assert found.available == {"cpu", "pids"} and not found.swap
    empty = Hierarchies(v2=tmp_path / "missing")
    assert detect_controllers(empty, own_cgroup="/").available == frozenset()
    assert detect_controllers(Hierarchies()).available == frozenset()


def test_v1_controllers_are_the_mounted_hierarchies(tmp_path: Path) -> None:
    memory = tmp_path / "memory"
    memory.mkdir()
    h = Hierarchies(
        v1={
            "cpu": tmp_path / "cpu,cpuacct",
            "cpuacct": tmp_path / "cpu,cpuacct",
            "memory": memory,
            "name=systemd": tmp_path / "systemd",
        },
        v2=fake_v2(tmp_path / "unified", "hugetlb").v2,
    )
    found = detect_controllers(h)
    # hugetlb is offered by the (empty) unified tree, but runc's v1 manager cannot use it.
    assert found.available == {"cpu", "cpuacct", "memory"} and not found.unified
    assert not found.swap
    (memory / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    assert detect_controllers(h).swap


def test_this_host() -> None:
    """v1 (or hybrid): the controllers the kernel knows that a hierarchy mounts (here
    hugetlb is known but mounted nowhere); v2: the root's cgroup.controllers."""
    h = Hierarchies.detect()
    found = detect_controllers(h)
    if h.v1:
        known = {line.split()[0] for line in Path("/proc/cgroups").read_text().splitlines()[1:]}
        assert found.available == known & set(h.v1)
    else:
        assert h.v2 is not None
        assert found.available == set((h.v2 / "cgroup.controllers").read_text().split())


def test_container_cgroup_path() -> None:
    assert container_cgroup_path("/kubepods/podx", "abc", "cgroupfs") == "/kubepods/podx/crid-abc"
    assert container_cgroup_path("", "abc", "cgroupfs") == "/crid-abc"
    assert container_cgroup_path("kubepods-podx.slice", "abc", "systemd") == (
        "kubepods-podx.slice:crid:abc"
    )


@pytest.mark.root
def test_pod_cgroup_in_every_hierarchy_with_real_usage() -> None:
    h = Hierarchies.detect()
    pod = f"crid-test-{secrets.token_hex(4)}/pod"
    h.create(pod)
    try:
        for root in h.roots():
            assert (root / pod).is_dir()
        # The busy loop waits for a line on stdin, so it burns CPU inside the cgroup, and
        # the final sleep replaces the shell, so the cgroup holds exactly one process.
        script = (
            "read go; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; exec sleep 30"
        )
        proc = subprocess.Popen(
            ["/bin/busybox", "sh", "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for controller in ("memory", "cpuacct", "pids"):
                procs = h.controller_path(controller, pod)
                if procs is not None:
                    (procs / "cgroup.procs").write_text(str(proc.pid))
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "done"
            time.sleep(0.1)
            stats = read_stats(h, pod)
            assert stats.cpu_usage_ns is not None and stats.cpu_usage_ns > 0
            assert stats.memory_usage_bytes is not None and stats.memory_usage_bytes > 0
            assert stats.memory_working_set_bytes is not None
            assert 0 <= stats.memory_working_set_bytes <= stats.memory_usage_bytes
            assert stats.process_count == 1
            # Only the memory.stat keys the stats need are read, and each is there.
            # (Pages faulted before the move stay charged elsewhere, so rss may be 0.)
            assert stats.memory_rss_bytes is not None
            assert stats.page_faults is not None and stats.major_page_faults is not None
            assert oom_kills(h, pod) == 0
            assert memory_limit(h, pod) is None  # no limit set
            memory = h.controller_path("memory", pod)
            assert memory is not None
            limit_file = "memory.max" if h.unified else "memory.limit_in_bytes"
            (memory / limit_file).write_text(str(256 << 20))
            assert memory_limit(h, pod) == 256 << 20
        finally:
            proc.kill()
            proc.wait()
        time.sleep(0.05)
    finally:
        h.remove(pod.split("/")[0])
    for root in h.roots():
        assert not (root / pod.split("/")[0]).exists()
    h.remove(pod.split("/")[0])  # idempotent


def test_refuses_the_root_cgroup() -> None:
    from crid.errors import CgroupError

    h = Hierarchies.from_mountinfo(HYBRID)
    with pytest.raises(CgroupError):
        h.remove("/")
    with pytest.raises(CgroupError):
        h.create("")
