"""The ``linux`` section of the runtime-spec v1.3.0 config (``config-linux.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from ocispec._model import FrozenDict, JSONModel, jfield, model

__all__ = [
    "CPU",
    "BlockIO",
    "Device",
    "DeviceCgroup",
    "HugepageLimit",
    "IDMapping",
    "IntelRdt",
    "InterfacePriority",
    "Linux",
    "Memory",
    "MemoryPolicy",
    "Namespace",
    "NamespaceType",
    "NetDevice",
    "Network",
    "Personality",
    "Pids",
    "Rdma",
    "Resources",
    "Seccomp",
    "SeccompAction",
    "SeccompArg",
    "SeccompOperator",
    "Syscall",
    "ThrottleDevice",
    "TimeOffset",
    "WeightDevice",
]


class NamespaceType(StrEnum):
    """Linux namespace kinds, spelled as in the spec."""

    PID = "pid"
    NETWORK = "network"
    MOUNT = "mount"
    IPC = "ipc"
    UTS = "uts"
    USER = "user"
    CGROUP = "cgroup"
    TIME = "time"


class SeccompAction(StrEnum):
    """Actions a seccomp rule can take."""

    KILL = "SCMP_ACT_KILL"
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    TRAP = "SCMP_ACT_TRAP"
    ERRNO = "SCMP_ACT_ERRNO"
    TRACE = "SCMP_ACT_TRACE"
    ALLOW = "SCMP_ACT_ALLOW"
    LOG = "SCMP_ACT_LOG"
    NOTIFY = "SCMP_ACT_NOTIFY"


class SeccompOperator(StrEnum):
    """Comparison operators for seccomp argument conditions."""

    NE = "SCMP_CMP_NE"
    LT = "SCMP_CMP_LT"
    LE = "SCMP_CMP_LE"
    EQ = "SCMP_CMP_EQ"
    GE = "SCMP_CMP_GE"
    GT = "SCMP_CMP_GT"
    MASKED_EQ = "SCMP_CMP_MASKED_EQ"


@model
class IDMapping(JSONModel):
    """A range of ids mapped into a user namespace (or an idmapped mount)."""

    container_id: int = jfield("containerID", omitempty=False)
    host_id: int = jfield("hostID", omitempty=False)
    size: int = jfield("size", omitempty=False)


@model
class Namespace(JSONModel):
    """A namespace to create (no ``path``) or to join (``path`` to an nsfs file)."""

    type: str = jfield("type", omitempty=False)
    path: str = jfield("path", default="")


@model
class Device(JSONModel):
    """A device node to create in the container."""

    path: str = jfield("path", omitempty=False)
    type: str = jfield("type", omitempty=False)
    major: int = jfield("major", omitempty=False, default=0)
    minor: int = jfield("minor", omitempty=False, default=0)
    file_mode: int | None = jfield("fileMode", default=None)
    uid: int | None = jfield("uid", default=None)
    gid: int | None = jfield("gid", default=None)


@model
class NetDevice(JSONModel):
    """A host network device to move into the container (``name`` renames it)."""

    name: str = jfield("name", default="")


@model
class DeviceCgroup(JSONModel):
    """A rule of the device cgroup allow-list; None major/minor mean ``*``."""

    allow: bool = jfield("allow", omitempty=False)
    type: str = jfield("type", default="")
    major: int | None = jfield("major", default=None)
    minor: int | None = jfield("minor", default=None)
    access: str = jfield("access", default="")


@model
class Memory(JSONModel):
    """Memory cgroup limits, in bytes; ``swap`` is memory plus swap."""

    limit: int | None = jfield("limit", default=None)
    reservation: int | None = jfield("reservation", default=None)
    swap: int | None = jfield("swap", default=None)
    kernel: int | None = jfield("kernel", default=None)
    kernel_tcp: int | None = jfield("kernelTCP", default=None)
    swappiness: int | None = jfield("swappiness", default=None)
    disable_oom_killer: bool | None = jfield("disableOOMKiller", default=None)
    use_hierarchy: bool | None = jfield("useHierarchy", default=None)
    check_before_update: bool | None = jfield("checkBeforeUpdate", default=None)


@model
class CPU(JSONModel):
    """CPU cgroup settings: cgroup v1 shares, CFS quota/period in microseconds, cpusets."""

    shares: int | None = jfield("shares", default=None)
    quota: int | None = jfield("quota", default=None)
    burst: int | None = jfield("burst", default=None)
    period: int | None = jfield("period", default=None)
    realtime_runtime: int | None = jfield("realtimeRuntime", default=None)
    realtime_period: int | None = jfield("realtimePeriod", default=None)
    cpus: str = jfield("cpus", default="")
    mems: str = jfield("mems", default="")
    idle: int | None = jfield("idle", default=None)


@model
class Pids(JSONModel):
    """The pids cgroup limit (0 or negative: no limit)."""

    limit: int = jfield("limit", omitempty=False)


@model
class WeightDevice(JSONModel):
    """A per-device block I/O weight."""

    major: int = jfield("major", omitempty=False)
    minor: int = jfield("minor", omitempty=False)
    weight: int | None = jfield("weight", default=None)
    leaf_weight: int | None = jfield("leafWeight", default=None)


@model
class ThrottleDevice(JSONModel):
    """A per-device block I/O rate limit (bytes or operations per second)."""

    major: int = jfield("major", omitempty=False)
    minor: int = jfield("minor", omitempty=False)
    rate: int = jfield("rate", omitempty=False)


@model
class BlockIO(JSONModel):
    """Block I/O cgroup settings."""

    weight: int | None = jfield("weight", default=None)
    leaf_weight: int | None = jfield("leafWeight", default=None)
    weight_device: Sequence[WeightDevice] = jfield("weightDevice", default=())
    throttle_read_bps_device: Sequence[ThrottleDevice] = jfield("throttleReadBpsDevice", default=())
    throttle_write_bps_device: Sequence[ThrottleDevice] = jfield(
        "throttleWriteBpsDevice", default=()
    )
    throttle_read_iops_device: Sequence[ThrottleDevice] = jfield(
        "throttleReadIOPSDevice", default=()
    )
    throttle_write_iops_device: Sequence[ThrottleDevice] = jfield(
        "throttleWriteIOPSDevice", default=()
    )


@model
class HugepageLimit(JSONModel):
    """A hugetlb limit in bytes for one page size (``2MB``, ``1GB``)."""

    page_size: str = jfield("pageSize", omitempty=False)
    limit: int = jfield("limit", omitempty=False)


@model
class InterfacePriority(JSONModel):
    """The net_prio priority of one network interface."""

    name: str = jfield("name", omitempty=False)
    priority: int = jfield("priority", omitempty=False)


@model
class Network(JSONModel):
    """net_cls class id and net_prio priorities."""

    class_id: int | None = jfield("classID", default=None)
    priorities: Sequence[InterfacePriority] = jfield("priorities", default=())


@model
class Rdma(JSONModel):
    """RDMA cgroup limits of one device."""

    hca_handles: int | None = jfield("hcaHandles", default=None)
    hca_objects: int | None = jfield("hcaObjects", default=None)


@model
class Resources(JSONModel):
    """Cgroup resource limits; ``unified`` holds raw cgroup v2 files (``memory.high``...)."""

    devices: Sequence[DeviceCgroup] = jfield("devices", default=())
    memory: Memory | None = jfield("memory", default=None)
    cpu: CPU | None = jfield("cpu", default=None)
    pids: Pids | None = jfield("pids", default=None)
    block_io: BlockIO | None = jfield("blockIO", default=None)
    hugepage_limits: Sequence[HugepageLimit] = jfield("hugepageLimits", default=())
    network: Network | None = jfield("network", default=None)
    rdma: Mapping[str, Rdma] = jfield("rdma", default_factory=FrozenDict)
    unified: Mapping[str, str] = jfield("unified", default_factory=FrozenDict)


@model
class SeccompArg(JSONModel):
    """A condition on one syscall argument."""

    index: int = jfield("index", omitempty=False)
    value: int = jfield("value", omitempty=False)
    value_two: int = jfield("valueTwo", default=0)
    op: str = jfield("op", omitempty=False)


@model
class Syscall(JSONModel):
    """A seccomp rule: the action for these syscalls when all ``args`` conditions hold."""

    names: Sequence[str] = jfield("names", omitempty=False)
    action: str = jfield("action", omitempty=False)
    errno_ret: int | None = jfield("errnoRet", default=None)
    args: Sequence[SeccompArg] = jfield("args", default=())


@model
class Seccomp(JSONModel):
    """The seccomp filter: a default action, the architectures, and the rules."""

    default_action: str = jfield("defaultAction", omitempty=False)
    default_errno_ret: int | None = jfield("defaultErrnoRet", default=None)
    architectures: Sequence[str] = jfield("architectures", default=())
    flags: Sequence[str] = jfield("flags", default=())
    listener_path: str = jfield("listenerPath", default="")
    listener_metadata: str = jfield("listenerMetadata", default="")
    syscalls: Sequence[Syscall] = jfield("syscalls", default=())


@model
class IntelRdt(JSONModel):
    """Intel RDT (resctrl) class of service and schemata."""

    clos_id: str = jfield("closID", default="")
    schemata: Sequence[str] = jfield("schemata", default=())
    l3_cache_schema: str = jfield("l3CacheSchema", default="")
    mem_bw_schema: str = jfield("memBwSchema", default="")
    enable_monitoring: bool = jfield("enableMonitoring", default=False)


@model
class MemoryPolicy(JSONModel):
    """The NUMA memory policy (set_mempolicy) of the container process."""

    mode: str = jfield("mode", omitempty=False)
    nodes: str = jfield("nodes", omitempty=False, default="")
    flags: Sequence[str] = jfield("flags", default=())


@model
class Personality(JSONModel):
    """The execution domain (``LINUX`` or ``LINUX32``)."""

    domain: str = jfield("domain", omitempty=False)
    flags: Sequence[str] = jfield("flags", default=())


@model
class TimeOffset(JSONModel):
    """A clock offset for a time namespace."""

    secs: int = jfield("secs", default=0)
    nanosecs: int = jfield("nanosecs", default=0)


@model
class Linux(JSONModel):
    """Linux-specific container configuration."""

    uid_mappings: Sequence[IDMapping] = jfield("uidMappings", default=())
    gid_mappings: Sequence[IDMapping] = jfield("gidMappings", default=())
    sysctl: Mapping[str, str] = jfield("sysctl", default_factory=FrozenDict)
    resources: Resources | None = jfield("resources", default=None)
    cgroups_path: str = jfield("cgroupsPath", default="")
    namespaces: Sequence[Namespace] = jfield("namespaces", default=())
    devices: Sequence[Device] = jfield("devices", default=())
    net_devices: Mapping[str, NetDevice] = jfield("netDevices", default_factory=FrozenDict)
    seccomp: Seccomp | None = jfield("seccomp", default=None)
    rootfs_propagation: str = jfield("rootfsPropagation", default="")
    masked_paths: Sequence[str] = jfield("maskedPaths", default=())
    readonly_paths: Sequence[str] = jfield("readonlyPaths", default=())
    mount_label: str = jfield("mountLabel", default="")
    intel_rdt: IntelRdt | None = jfield("intelRdt", default=None)
    memory_policy: MemoryPolicy | None = jfield("memoryPolicy", default=None)
    personality: Personality | None = jfield("personality", default=None)
    time_offsets: Mapping[str, TimeOffset] = jfield("timeOffsets", default_factory=FrozenDict)

    def namespace(self, kind: str) -> Namespace | None:
        """The namespace entry of type ``kind``, if any."""
        return next((ns for ns in self.namespaces if ns.type == kind), None)
