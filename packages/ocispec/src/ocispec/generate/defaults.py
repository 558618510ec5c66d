"""The defaults of a generated container: mounts, masked and read-only paths, devices, rlimits."""

from __future__ import annotations

from ocispec.runtime import Device, DeviceCgroup, Mount, Rlimit

__all__ = [
    "DEFAULT_DEVICES",
    "DEFAULT_DEVICE_CGROUP_RULES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "DEFAULT_RLIMITS",
    "DEFAULT_SHM_SIZE",
    "default_mounts",
]

#: Size of the container's own /dev/shm when the caller does not bind a pod's.
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

#: Paths hidden from the container (bind-mounted over with /dev/null or an empty tmpfs).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)

#: Paths made read-only in the container.
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

#: Default resource limits (CRI-O's); the generator lowers them to what it may set.
DEFAULT_RLIMITS: tuple[Rlimit, ...] = (
    Rlimit(type="RLIMIT_NOFILE", soft=1048576, hard=1048576),
    Rlimit(type="RLIMIT_NPROC", soft=1048576, hard=1048576),
)

_RW_ALL = 0o666


def _chr(path: str, major: int, minor: int) -> Device:
    return Device(path=path, type="c", major=major, minor=minor, file_mode=_RW_ALL, uid=0, gid=0)


#: Device nodes every container gets (``/dev/ptmx`` is runc's symlink to ``pts/ptmx``).
DEFAULT_DEVICES: tuple[Device, ...] = (
    _chr("/dev/null", 1, 3),
    _chr("/dev/zero", 1, 5),
    _chr("/dev/full", 1, 7),
    _chr("/dev/random", 1, 8),
    _chr("/dev/urandom", 1, 9),
    _chr("/dev/tty", 5, 0),
)

#: The device cgroup allow-list: deny everything, then allow the default devices,
#: ``/dev/ptmx`` and the pseudo-terminals.
DEFAULT_DEVICE_CGROUP_RULES: tuple[DeviceCgroup, ...] = (
    DeviceCgroup(allow=False, access="rwm"),
    *(
        DeviceCgroup(allow=True, type="c", major=d.major, minor=d.minor, access="rwm")
        for d in DEFAULT_DEVICES
    ),
    DeviceCgroup(allow=True, type="c", major=5, minor=2, access="rwm"),
    DeviceCgroup(allow=True, type="c", major=136, access="rwm"),
)


def default_mounts(
    *,
    shm_size: int = DEFAULT_SHM_SIZE,
    sysfs_readonly: bool = True,
    cgroup_readonly: bool = True,
    private_ipc: bool = True,
    bind_sys: bool = False,
) -> tuple[Mount, ...]:
    """The standard mount set: /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup.

    ``private_ipc=False`` (host IPC) binds the host's /dev/mqueue instead of a new one;
    ``bind_sys=True`` binds the host's /sys (needed when a user namespace does not own
    the network namespace, where sysfs cannot be mounted).
    """
    ro = ["ro"] if sysfs_readonly else ["rw"]
    mounts = [
        Mount(
            destination="/proc", type="proc", source="proc", options=["nosuid", "noexec", "nodev"]
        ),
        Mount(
            destination="/dev",
            type="tmpfs",
            source="tmpfs",
            options=["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        Mount(
            destination="/dev/pts",
            type="devpts",
            source="devpts",
            options=["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        Mount(
            destination="/dev/shm",
            type="tmpfs",
            source="shm",
            options=["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"],
        ),
    ]
    if private_ipc:
        mounts.append(
            Mount(
                destination="/dev/mqueue",
                type="mqueue",
                source="mqueue",
                options=["nosuid", "noexec", "nodev"],
            )
        )
    else:
        mounts.append(
            Mount(
                destination="/dev/mqueue",
                type="bind",
                source="/dev/mqueue",
                options=["rbind", "nosuid", "noexec", "nodev"],
            )
        )
    if bind_sys:
        mounts.append(
            Mount(
                destination="/sys",
                type="bind",
                source="/sys",
                options=["rbind", "nosuid", "noexec", "nodev", *ro],
            )
        )
    else:
        mounts.append(
            Mount(
                destination="/sys",
                type="sysfs",
                source="sysfs",
                options=["nosuid", "noexec", "nodev", *ro],
            )
        )
    mounts.append(
        Mount(
            destination="/sys/fs/cgroup",
            type="cgroup",
            source="cgroup",
            options=["nosuid", "noexec", "nodev", "relatime", "ro" if cgroup_readonly else "rw"],
        )
    )
    return tuple(mounts)
