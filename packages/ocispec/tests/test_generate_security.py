"""Unit tests of the generator's security parts: seccomp profiles and sysctls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocispec import (
    Schema,
    SeccompProfileError,
    SysctlError,
    violations,
)
from ocispec.generate import (
    BUILTIN_PROFILE,
    DEFAULT_CAPABILITIES,
    SeccompOptions,
    SeccompProfileType,
    normalize_sysctl_name,
    runtime_default,
    seccomp_for,
    sysctl_namespace,
    sysctl_path,
    translate_profile,
    validate_sysctls,
)

# -- seccomp --------------------------------------------------------------------------------

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [
        {
            "architecture": "SCMP_ARCH_X86_64",
            "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        },
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write", "setns"], "action": "SCMP_ACT_ALLOW"},
        {"name": "arch_prctl", "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["only_arm"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["not_amd64"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
        {
            "names": ["setns"],
            "action": "SCMP_ACT_ERRNO",
            "errno": "EPERM",
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {"names": ["new_call"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.8"}},
        {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.8"}},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        },
    ],
}


def _names(seccomp) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[str]] = {}
    for rule in seccomp.syscalls:
        for n in rule.names:
            out.setdefault(n, []).append(rule.action)
    return out


def test_translation_filters_by_arch_caps_and_kernel() -> None:
    sc = translate_profile(
        PROFILE, capabilities=DEFAULT_CAPABILITIES, arch="amd64", kernel="6.1.0-18-amd64"
    )
    assert sc.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    names = _names(sc)
    assert "arch_prctl" in names and "only_arm" not in names and "not_amd64" not in names
    assert "ptrace" not in names
    assert names["setns"] == ["SCMP_ACT_ERRNO"]  # the deny wins over the plain allow
    assert "new_call" in names and "old_call" not in names
    assert sc.default_errno_ret == 38
    errno_rule = next(r for r in sc.syscalls if r.names == ("setns",))
    assert errno_rule.errno_ret == 1
    assert next(r for r in sc.syscalls if r.names == ("personality",)).args[0].value == 8

    arm = translate_profile(
        PROFILE,
        capabilities=[*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE", "CAP_SYS_ADMIN"],
        arch="arm64",
        kernel="4.19",
    )
    names = _names(arm)
    assert arm.architectures == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")
    assert "only_arm" in names and "not_amd64" in names and "arch_prctl" not in names
    assert names["ptrace"] == ["SCMP_ACT_ALLOW"] and names["setns"] == ["SCMP_ACT_ALLOW"]
    assert "old_call" in names and "new_call" not in names


def test_oci_format_profiles_translate_as_they_are() -> None:
    oci = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    sc = translate_profile(oci, capabilities=(), arch="amd64")
    assert sc.to_dict() == oci


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"syscalls": []}, "unknown seccomp action"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]},
            "needs 'name'",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {
                        "names": ["x"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "outside 0..5",
        ),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["a"], "archMap": [{}]}, "not both"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EWHAT"}, "unknown errno"),
    ],
)
def test_bad_profiles(profile, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SeccompProfileError, match=message):
        translate_profile(profile, capabilities=())


def test_runtime_default_hardening() -> None:
    sc = runtime_default(capabilities=DEFAULT_CAPABILITIES, path=None, arch="amd64", kernel="6.1")
    names = _names(sc)
    for denied in ("keyctl", "add_key", "request_key", "kexec_load", "mount", "unshare", "setns"):
        assert names[denied] == ["SCMP_ACT_ERRNO"], denied
    clone = [r for r in sc.syscalls if "clone" in r.names]
    assert len(clone) == 1 and clone[0].args[0].op == "SCMP_CMP_MASKED_EQ"
    assert next(r for r in sc.syscalls if r.names == ("clone3",)).errno_ret == 38
    for allowed in ("read", "execve", "openat", "futex", "getpid"):
        assert names[allowed] == ["SCMP_ACT_ALLOW"]
    admin = runtime_default(
        capabilities=[*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], path=None, arch="amd64"
    )
    names = _names(admin)
    assert names["mount"] == ["SCMP_ACT_ALLOW"] and names["keyctl"] == ["SCMP_ACT_ERRNO"]
    assert all(not r.args for r in admin.syscalls if "clone" in r.names)
    plain = runtime_default(
        capabilities=DEFAULT_CAPABILITIES, path=None, harden_profile=False, arch="amd64"
    )
    assert "keyctl" not in _names(plain)  # the built-in list never had it: default ENOSYS
    assert (
        violations(
            {"ociVersion": "1.3.0", "linux": {"seccomp": sc.to_dict()}}, Schema.RUNTIME_CONFIG
        )
        == []
    )


def test_containers_common_profile_when_installed() -> None:
    path = Path("/usr/share/containers/seccomp.json")
    if not path.exists():
        pytest.fail(
            "/usr/share/containers/seccomp.json missing: install golang-github-containers-common"
        )
    sc = runtime_default(capabilities=DEFAULT_CAPABILITIES, path=path, arch="amd64", kernel="6.1")
    names = _names(sc)
    assert names["keyctl"] == ["SCMP_ACT_ERRNO"] and names["read"] == ["SCMP_ACT_ALLOW"]
    assert names["open_by_handle_at"] == ["SCMP_ACT_ERRNO"]
    assert sc.architectures[0] == "SCMP_ARCH_X86_64"


def test_seccomp_options(tmp_path: Path) -> None:
    assert seccomp_for(SeccompOptions(type=SeccompProfileType.UNCONFINED), capabilities=()) is None
    assert seccomp_for(SeccompOptions(), capabilities=(), privileged=True) is None
    prof = tmp_path / "p.json"
    prof.write_text(json.dumps(BUILTIN_PROFILE))
    local = SeccompOptions(
        type=SeccompProfileType.LOCALHOST, localhost_path="p.json", localhost_root=str(tmp_path)
    )
    assert seccomp_for(local, capabilities=()) is not None
    # Privileged means no filter, even with a Localhost profile.
    assert seccomp_for(local, capabilities=(), privileged=True) is None
    with pytest.raises(SeccompProfileError, match="not absolute"):
        seccomp_for(
            SeccompOptions(type=SeccompProfileType.LOCALHOST, localhost_path="p.json"),
            capabilities=(),
        )
    with pytest.raises(SeccompProfileError, match="cannot read"):
        seccomp_for(
            SeccompOptions(type=SeccompProfileType.LOCALHOST, localhost_path="/nope.json"),
            capabilities=(),
        )
    prof.write_text("[1]")
    with pytest.raises(SeccompProfileError, match="no defaultAction"):
        seccomp_for(local, capabilities=())


# -- sysctls --------------------------------------------------------------------------------


def test_sysctls() -> None:
    ok = validate_sysctls(
        {
            "net/ipv4/ip_local_port_range": "1 2",
            "kernel.shm_rmid_forced": "1",
            "net.core.somaxconn": "1024",
            "fs.mqueue.msg_max": "100",
            "kernel.msg_next_id": "5",
            "kernel.sem": "250 32000 32 128",
            "net/ipv4/conf/eth0.100/forwarding": "1",
            "kernel.domainname": "example",
        },
        private_network=True,
        private_ipc=True,
        private_uts=True,
    )
    # No allow-list here: unsafe but namespaced sysctls pass (the kubelet decides).
    assert ok == {
        "net.ipv4.ip_local_port_range": "1 2",
        "kernel.shm_rmid_forced": "1",
        "net.core.somaxconn": "1024",
        "fs.mqueue.msg_max": "100",
        "kernel.msg_next_id": "5",
        "kernel.sem": "250 32000 32 128",
        "net.ipv4.conf.eth0/100.forwarding": "1",
        "kernel.domainname": "example",
    }
    assert (
        normalize_sysctl_name("net/ipv4/conf/eth0.100/forwarding")
        == "net.ipv4.conf.eth0/100.forwarding"
    )
    assert normalize_sysctl_name("net.ipv4.conf.eth0/100.forwarding") == (
        "net.ipv4.conf.eth0/100.forwarding"
    )
    # Both spellings reach the same file; dots inside a level stay dots in the path.
    assert sysctl_path("net.ipv4.conf.eth0/100.forwarding") == "net/ipv4/conf/eth0.100/forwarding"
    assert sysctl_path("kernel.shm_rmid_forced") == "kernel/shm_rmid_forced"
    assert [sysctl_namespace(n) for n in ("kernel.shmmax", "net.x", "kernel.domainname")] == [
        "ipc",
        "network",
        "uts",
    ]
    assert sysctl_namespace("kernel.semx") is None and sysctl_namespace("vm.swappiness") is None
    cases = [
        ({"vm.swappiness": "1"}, True, True, True, "vm.swappiness is not namespaced"),
        ({"kernel.panic": "1"}, True, True, True, "kernel.panic is not namespaced"),
        ({"kernel.hostname": "x"}, True, True, True, "hostname"),
        ({"kernel.domainname": "x"}, True, True, False, "host's UTS"),
        ({"net.ipv4.tcp_syncookies": "1"}, False, True, True, "tcp_syncookies would change"),
        ({"net/core/somaxconn": "1"}, False, True, True, "net.core.somaxconn .*host network"),
        ({"kernel.msgmax": "1"}, True, False, True, "kernel.msgmax .*host IPC"),
        ({"fs.mqueue.msg_max": "1"}, True, False, True, "host IPC"),
        ({"net..x": "1"}, True, True, True, "invalid"),
        ({"net.": "1"}, True, True, True, "invalid"),
        # Levels that would climb out of /proc/sys, in either spelling.
        ({"net.//.//.//sysrq-trigger": "b"}, True, True, True, "invalid"),
        ({"net/../../sysrq-trigger": "b"}, True, True, True, "invalid"),
        ({"net/./ipv4": "b"}, True, True, True, "invalid"),
        ({"net.a\x00b": "1"}, True, True, True, "invalid"),
    ]
    for sysctls, net, ipc, uts, message in cases:
        with pytest.raises(SysctlError, match=message):
            validate_sysctls(sysctls, private_network=net, private_ipc=ipc, private_uts=uts)
