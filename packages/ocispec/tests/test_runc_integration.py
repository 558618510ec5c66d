"""Generated configs run by the real runc; checked from inside the busybox container."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest
from ocispec.generate import (
    DEFAULT_CAPABILITIES,
    BindMount,
    NamespaceOption,
    NamespaceOptions,
    ResourceOptions,
    SeccompOptions,
    SeccompProfileType,
    SecurityOptions,
    TmpfsMount,
    capability_mask,
    generate,
    process_capabilities,
)
from ocispec.image import ExecutionConfig
from ocispec.runtime import Rlimit

pytestmark = [pytest.mark.root, pytest.mark.binaries("/usr/sbin/runc", "/bin/busybox")]


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def test_user_groups_env_cwd_hostname(runc, rootfs) -> None:  # type: ignore[no-untyped-def]
    cid = runc.new_id()
    opts = runc.options(
        rootfs,
        cid,
        image=ExecutionConfig(
            env=["FROM_IMAGE=1", "OVERRIDE=image"], user="app", working_dir="/home/app"
        ),
        command=sh("id; env; pwd; hostname"),
        env={"OVERRIDE": "explicit", "EXTRA": "x y"},
        supplemental_groups=[3000],
        hostname="box1",
    )
    result = runc.run(generate(opts), cid)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "uid=1000(app) gid=1000(app) groups=10(wheel),29(audio),1000(app),3000"
    env = set(lines[1:-2])
    assert {
        "FROM_IMAGE=1",
        "OVERRIDE=explicit",
        "EXTRA=x y",
        "HOME=/home/app",
        "HOSTNAME=box1",
    } <= env
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in env
    assert lines[-2:] == ["/home/app", "box1"]


def test_user_group_override_and_strict_policy(runc, rootfs) -> None:  # type: ignore[no-untyped-def]
    from ocispec.generate import SupplementalGroupsPolicy

    cid = runc.new_id()
    opts = runc.options(rootfs, cid, command=["id"], user="other:audio")
    result = runc.run(generate(opts), cid)
    assert result.stdout.strip() == "uid=1001(other) gid=29(audio) groups=29(audio)", result.stderr
    cid = runc.new_id()
    opts = runc.options(
        rootfs,
        cid,
        command=["id"],
        user="1000",
        supplemental_groups=[5000],
        supplemental_groups_policy=SupplementalGroupsPolicy.STRICT,
    )
    result = runc.run(generate(opts), cid)
    assert result.stdout.strip() == "uid=1000(app) gid=1000(app) groups=1000(app),5000", (
        result.stderr
    )


def _caps(text: str, which: str = "CapEff") -> int:
    for line in text.splitlines():
        if line.startswith(which + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {which} in {text!r}")


def test_capabilities_default_add_drop_and_privileged(runc, rootfs) -> None:  # type: ignore[no-untyped-def]
    cid = runc.new_id()
    result = runc.run(
        generate(runc.options(rootfs, cid, command=["cat", "/proc/self/status"])), cid
    )
    assert result.returncode == 0, result.stderr
    assert _caps(result.stdout) == capability_mask(DEFAULT_CAPABILITIES)
    assert _caps(result.stdout, "CapBnd") == capability_mask(DEFAULT_CAPABILITIES)

    cid = runc.new_id()
    sec = SecurityOptions(capabilities_add=["NET_RAW", "sys_chroot"], capabilities_drop=["CHOWN"])
    result = runc.run(
        generate(runc.options(rootfs, cid, command=["cat", "/proc/self/status"], security=sec)), cid
    )
    want = (set(DEFAULT_CAPABILITIES) | {"CAP_NET_RAW", "CAP_SYS_CHROOT"}) - {"CAP_CHOWN"}
    assert _caps(result.stdout) == capability_mask(want), result.stderr

    cid = runc.new_id()
    sec = SecurityOptions(capabilities_drop=["ALL"], capabilities_add=["KILL"])
    result = runc.run(
        generate(runc.options(rootfs, cid, command=["cat", "/proc/self/status"], security=sec)), cid
    )
    assert _caps(result.stdout) == capability_mask(["CAP_KILL"]), result.stderr

    cid = runc.new_id()
    script = (
        "cat /proc/self/status; grep -c ' /proc/kcore ' /proc/mounts; grep ' /sys ' /proc/mounts"
    )
    opts = runc.options(rootfs, cid, command=sh(script), security=SecurityOptions(privileged=True))
    result = runc.run(generate(opts), cid)
    assert result.returncode == 0, result.stderr
    assert _caps(result.stdout) == capability_mask(process_capabilities("CapBnd"))
    tail = result.stdout.splitlines()[-2:]
    assert tail[0] == "0"  # nothing masked
    assert " rw," in tail[1]  # /sys writable


def test_mounts_masked_paths_and_readonly_rootfs(runc, rootfs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from host\n")
    cid = runc.new_id()
    script = (
        "cat /data/hello; "
        "touch /data/nope 2>/dev/null && echo data-writable || echo data-readonly; "
        "touch /scratch/ok && echo scratch-writable; "
        "touch /rootfile 2>/dev/null && echo root-writable || echo root-readonly; "
        "grep ' /scratch ' /proc/mounts; "
        "cat /proc/kcore | wc -c; "
        "grep -c ' /proc/keys ' /proc/mounts; "
        "echo 1 > /proc/sys/vm/overcommit_memory 2>/dev/null && echo sys-writable "
        "|| echo sys-readonly"
    )
    opts = runc.options(
        rootfs,
        cid,
        command=sh(script),
        mounts=[
            BindMount(source=str(data), destination="/data", readonly=True),
            TmpfsMount(destination="/scratch", size=1 << 20, mode=0o1777),
        ],
        security=SecurityOptions(readonly_rootfs=True),
    )
    result = runc.run(generate(opts), cid)
    lines = result.stdout.splitlines()
    assert lines[:4] == ["from host", "data-readonly", "scratch-writable", "root-readonly"], (
        result.stderr
    )
    assert lines[4].split()[2] == "tmpfs" and "size=1024k" in lines[4]
    assert lines[5:] == ["0", "1", "sys-readonly"]
    assert not (data / "nope").exists()


def test_rlimits_and_oom_score(runc, rootfs) -> None:  # type: ignore[no-untyped-def]
    cid = runc.new_id()
    opts = runc.options(
        rootfs,
        cid,
        command=sh("ulimit -n; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj"),
        rlimits=[
            Rlimit(type="RLIMIT_NOFILE", soft=1000, hard=2000),
            Rlimit(type="RLIMIT_CORE", soft=0, hard=0),
        ],
        oom_score_adj=-500,
    )
    result = runc.run(generate(opts), cid)
    current = Path("/proc/self/oom_score_adj").read_text().strip()
    assert result.stdout.split() == [
        "1000",
        "2000",
        "0",
        current if int(current) > -500 else "-500",
    ], result.stderr
    cid = runc.new_id()
    opts = runc.options(rootfs, cid, command=["cat", "/proc/self/oom_score_adj"], oom_score_adj=700)
    result = runc.run(generate(opts), cid)
    assert result.stdout.strip() == "700", result.stderr
    # The default rlimits are lowered to what runc may set without CAP_SYS_RESOURCE.
    cid = runc.new_id()
    result = runc.run(generate(runc.options(rootfs, cid, command=sh("ulimit -n"))), cid)
    assert result.returncode == 0, result.stderr


_SYSCALLS = {
    "x86_64": {
        "keyctl": 250,
        "add_key": 248,
        "kexec_load": 246,
        "unshare": 272,
        "mount": 165,
        "getpid": 39,
    },
    "aarch64": {
        "keyctl": 219,
        "add_key": 217,
        "kexec_load": 104,
        "unshare": 97,
        "mount": 40,
        "getpid": 172,
    },
}

PROBE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
nr = dict(a.split("=") for a in sys.argv[1:])
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(int(nr[name]), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
print("keyctl", call("keyctl", 0, -3, 0))
print("add_key", call("add_key", 0, 0, 0, 0, 0))
print("kexec_load", call("kexec_load", 0, 0, 0, 0))
print("unshare", call("unshare", 0x10000000))
print("mount", call("mount", 0, 0, 0, 0, 0))
print("getpid", call("getpid"))
"""


def _python_rootfs(rootfs: Path) -> None:
    """Make the host's /usr (and python3) usable in the rootfs: lib symlinks, /usr bind."""
    for name in ("lib", "lib64"):
        if Path("/", name).is_symlink():
            (rootfs / name).symlink_to(os.readlink(Path("/", name)))
        elif Path("/", name).is_dir():
            (rootfs / name).mkdir(exist_ok=True)


def _python_mounts() -> list[BindMount]:
    mounts = [BindMount(source="/usr", destination="/usr", readonly=True)]
    for name in ("lib", "lib64"):
        if Path("/", name).is_dir() and not Path("/", name).is_symlink():
            mounts.append(BindMount(source=f"/{name}", destination=f"/{name}", readonly=True))
    return mounts


@pytest.mark.parametrize("profile", ["containers-common", "builtin"])
def test_seccomp_runtime_default_blocks_what_it_must(runc, rootfs, profile: str) -> None:  # type: ignore[no-untyped-def]
    machine = platform.machine()
    if machine not in _SYSCALLS:
        pytest.fail(f"no syscall table for {machine} in this test")
    if profile == "containers-common" and not Path("/usr/share/containers/seccomp.json").exists():
        pytest.fail(
            "/usr/share/containers/seccomp.json missing: install golang-github-containers-common"
        )
    _python_rootfs(rootfs)
    seccomp = SeccompOptions(
        default_profile_path="/usr/share/containers/seccomp.json"
        if profile != "builtin"
        else "/nonexistent"
    )
    nrs = [f"{k}={v}" for k, v in _SYSCALLS[machine].items()]
    cid = runc.new_id()
    opts = runc.options(
        rootfs,
        cid,
        command=["/usr/bin/python3", "-I", "-c", PROBE, *nrs],
        mounts=_python_mounts(),
        security=SecurityOptions(seccomp=seccomp),
    )
    result = runc.run(generate(opts), cid)
    assert result.returncode == 0, result.stderr
    got = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert got["keyctl"] == os.strerror(1)
    assert got["add_key"] == os.strerror(1)
    assert got["kexec_load"] == os.strerror(1)
    assert got["unshare"] == os.strerror(1)
    assert got["mount"] == os.strerror(1)
    assert got["getpid"] == "ok"

    # busybox applets that ordinary scripts use keep working; unshare -U is refused.
    cid = runc.new_id()
    script = (
        "ls / >/dev/null && echo ls-ok; "
        "unshare -U true 2>/dev/null && echo unshared || echo unshare-refused"
    )
    opts = runc.options(rootfs, cid, command=sh(script), security=SecurityOptions(seccomp=seccomp))
    result = runc.run(generate(opts), cid)
    assert result.stdout.split() == ["ls-ok", "unshare-refused"], result.stderr


def test_seccomp_unconfined_and_sys_admin(runc, rootfs) -> None:  # type: ignore[no-untyped-def]
    _python_rootfs(rootfs)
    nrs = [f"{k}={v}" for k, v in _SYSCALLS.get(platform.machine(), _SYSCALLS["x86_64"]).items()]
    cid = runc.new_id()
    unconfined = SecurityOptions(seccomp=SeccompOptions(type=SeccompProfileType.UNCONFINED))
    opts = runc.options(
        rootfs,
        cid,
        command=["/usr/bin/python3", "-I", "-c", PROBE, *nrs],
        mounts=_python_mounts(),
        security=unconfined,
    )
    result = runc.run(generate(opts), cid)
    got = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert got["keyctl"] == "ok", result.stderr
    assert got["unshare"] == "ok"
    # With CAP_SYS_ADMIN, RuntimeDefault lets unshare and mount through.
    cid = runc.new_id()
    script = "unshare -U true && echo unshared; mount -t tmpfs none /mnt && echo mounted"
    opts = runc.options(
        rootfs, cid, command=sh(script), security=SecurityOptions(capabilities_add=["SYS_ADMIN"])
    )
    result = runc.run(generate(opts), cid)
    assert result.stdout.split() == ["unshared", "mounted"], result.stderr


def test_seccomp_localhost_profile(runc, rootfs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ['
        '{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}'
    )
    cid = runc.new_id()
    sec = SecurityOptions(
        seccomp=SeccompOptions(type=SeccompProfileType.LOCALHOST, localhost_path=str(profile))
    )
    opts = runc.options(
        rootfs, cid, command=sh("mkdir /tmp/x || echo refused; echo done"), security=sec
    )
    result = runc.run(generate(opts), cid)
    assert result.stdout.split()[-2:] == ["refused", "done"], result.stderr
    assert "Permission denied" in result.stderr or "Permission denied" in result.stdout


def test_sysctls_resources_and_cgroup(runc, rootfs) -> None:  # type: ignore[no-untyped-def]
    cid = runc.new_id()
    script = (
        "cat /proc/sys/net/ipv4/ip_local_port_range; "
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
        "|| cat /sys/fs/cgroup/memory.max"
    )
    opts = runc.options(
        rootfs,
        cid,
        command=sh(script),
        sysctls={"net.ipv4.ip_local_port_range": "20000 30000"},
        resources=ResourceOptions(
            pids_limit=64, memory_limit=64 << 20, cpu_weight=100, cpu_quota=50000, cpu_period=100000
        ),
    )
    result = runc.run(generate(opts), cid)
    assert result.stdout.split() == ["20000", "30000", "64", str(64 << 20)], result.stderr


def test_namespace_modes(runc, rootfs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A pinned network namespace as a pod has, the host's UTS, and a target's PID namespace.
    netns = tmp_path / "netns"
    netns.touch()
    subprocess.run(["unshare", f"--net={netns}", "true"], check=True)
    try:
        target = runc.new_id()
        target_pid = runc.run_detached(
            generate(runc.options(rootfs, target, command=["sleep", "300"])), target
        )
        cid = runc.new_id()
        ns = NamespaceOptions(
            network=NamespaceOption.pod(str(netns)),
            uts=NamespaceOption.node(),
            pid=NamespaceOption.target(target_pid),
        )
        script = (
            "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/pid; ps"
        )
        result = runc.run(
            generate(runc.options(rootfs, cid, command=sh(script), namespaces=ns)), cid
        )
        lines = result.stdout.splitlines()
        assert lines[0] == f"net:[{netns.stat().st_ino}]", result.stderr
        assert lines[1] == os.readlink("/proc/self/ns/uts")
        assert lines[2] == os.readlink(f"/proc/{target_pid}/ns/pid")
        assert any("sleep 300" in line for line in lines[3:])
    finally:
        subprocess.run(["umount", str(netns)], check=False)


def test_user_namespace(runc, world_rootfs) -> None:  # type: ignore[no-untyped-def]
    from ocispec.generate import UserNamespace

    cid = runc.new_id()
    ns = NamespaceOptions(user=UserNamespace.mapped(host_id=200000, size=65536))
    script = "cat /proc/self/uid_map /proc/self/gid_map; id; ls -ln /bin/busybox"
    result = runc.run(
        generate(runc.options(world_rootfs, cid, command=sh(script), namespaces=ns)), cid
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["0", "200000", "65536"]
    assert lines[1].split() == ["0", "200000", "65536"]
    assert lines[2].startswith("uid=0(root) gid=0(root)")
    assert lines[3].split()[2:4] == ["65534", "65534"]  # host root is unmapped: nobody
