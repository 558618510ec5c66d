"""The runtime-spec v1.3.0 container configuration (``config.json``): :class:`Spec` and parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ocispec._model import FrozenDict, JSONModel, jfield, model
from ocispec.runtime.linux import IDMapping, Linux

__all__ = [
    "OCI_VERSION",
    "CPUAffinity",
    "Capabilities",
    "ConsoleSize",
    "Hook",
    "Hooks",
    "IOPriority",
    "Mount",
    "Process",
    "Rlimit",
    "Root",
    "Scheduler",
    "Spec",
    "User",
]

#: The runtime-spec version these models implement and the builder writes.
OCI_VERSION = "1.3.0"


@model
class ConsoleSize(JSONModel):
    """Size of the console when ``terminal`` is set."""

    height: int = jfield("height", omitempty=False)
    width: int = jfield("width", omitempty=False)


@model
class User(JSONModel):
    """The user the process runs as; ``username`` is for Windows."""

    uid: int = jfield("uid", omitempty=False, default=0)
    gid: int = jfield("gid", omitempty=False, default=0)
    umask: int | None = jfield("umask", default=None)
    additional_gids: Sequence[int] = jfield("additionalGids", default=())
    username: str = jfield("username", default="")


@model
class Capabilities(JSONModel):
    """The capability sets of the process (``CAP_*`` names)."""

    bounding: Sequence[str] = jfield("bounding", default=())
    effective: Sequence[str] = jfield("effective", default=())
    inheritable: Sequence[str] = jfield("inheritable", default=())
    permitted: Sequence[str] = jfield("permitted", default=())
    ambient: Sequence[str] = jfield("ambient", default=())


@model
class Rlimit(JSONModel):
    """A POSIX resource limit (``RLIMIT_NOFILE``...)."""

    type: str = jfield("type", omitempty=False)
    hard: int = jfield("hard", omitempty=False)
    soft: int = jfield("soft", omitempty=False)


@model
class Scheduler(JSONModel):
    """Scheduling attributes (sched_setattr)."""

    policy: str = jfield("policy", omitempty=False)
    nice: int = jfield("nice", default=0)
    priority: int = jfield("priority", default=0)
    flags: Sequence[str] = jfield("flags", default=())
    runtime: int = jfield("runtime", default=0)
    deadline: int = jfield("deadline", default=0)
    period: int = jfield("period", default=0)


@model
class IOPriority(JSONModel):
    """The I/O priority class and level."""

    class_: str = jfield("class", omitempty=False)
    priority: int = jfield("priority", omitempty=False, default=0)


@model
class CPUAffinity(JSONModel):
    """CPU affinity of processes started with ``exec``: before and after joining the cgroup."""

    initial: str = jfield("initial", default="")
    final: str = jfield("final", default="")


@model
class Process(JSONModel):
    """The container process."""

    terminal: bool = jfield("terminal", default=False)
    console_size: ConsoleSize | None = jfield("consoleSize", default=None)
    user: User = jfield("user", omitempty=False, default_factory=User)
    args: Sequence[str] = jfield("args", default=())
    command_line: str = jfield("commandLine", default="")
    env: Sequence[str] = jfield("env", default=())
    cwd: str = jfield("cwd", omitempty=False)
    capabilities: Capabilities | None = jfield("capabilities", default=None)
    rlimits: Sequence[Rlimit] = jfield("rlimits", default=())
    no_new_privileges: bool = jfield("noNewPrivileges", default=False)
    apparmor_profile: str = jfield("apparmorProfile", default="")
    oom_score_adj: int | None = jfield("oomScoreAdj", default=None)
    scheduler: Scheduler | None = jfield("scheduler", default=None)
    selinux_label: str = jfield("selinuxLabel", default="")
    io_priority: IOPriority | None = jfield("ioPriority", default=None)
    exec_cpu_affinity: CPUAffinity | None = jfield("execCPUAffinity", default=None)


@model
class Root(JSONModel):
    """The root filesystem: a path (relative to the bundle or absolute)."""

    path: str = jfield("path", omitempty=False)
    readonly: bool = jfield("readonly", default=False)


@model
class Mount(JSONModel):
    """A mount; ``uid_mappings``/``gid_mappings`` make it an idmapped mount."""

    destination: str = jfield("destination", omitempty=False)
    type: str = jfield("type", default="")
    source: str = jfield("source", default="")
    options: Sequence[str] = jfield("options", default=())
    uid_mappings: Sequence[IDMapping] = jfield("uidMappings", default=())
    gid_mappings: Sequence[IDMapping] = jfield("gidMappings", default=())


@model
class Hook(JSONModel):
    """A program run at a lifecycle event; ``timeout`` in seconds."""

    path: str = jfield("path", omitempty=False)
    args: Sequence[str] = jfield("args", default=())
    env: Sequence[str] = jfield("env", default=())
    timeout: int | None = jfield("timeout", default=None)


@model
class Hooks(JSONModel):
    """Lifecycle hooks. ``prestart`` is deprecated (read, still written if set)."""

    prestart: Sequence[Hook] = jfield("prestart", default=())
    create_runtime: Sequence[Hook] = jfield("createRuntime", default=())
    create_container: Sequence[Hook] = jfield("createContainer", default=())
    start_container: Sequence[Hook] = jfield("startContainer", default=())
    poststart: Sequence[Hook] = jfield("poststart", default=())
    poststop: Sequence[Hook] = jfield("poststop", default=())


@model
class Spec(JSONModel):
    """A container configuration, the ``config.json`` of an OCI bundle.

    Sections for other platforms (``windows``, ``solaris``, ``vm``, ``zos``,
    ``freebsd``) are kept verbatim in ``extra``.
    """

    oci_version: str = jfield("ociVersion", omitempty=False, default=OCI_VERSION)
    process: Process | None = jfield("process", default=None)
    root: Root | None = jfield("root", default=None)
    hostname: str = jfield("hostname", default="")
    domainname: str = jfield("domainname", default="")
    mounts: Sequence[Mount] = jfield("mounts", default=())
    hooks: Hooks | None = jfield("hooks", default=None)
    annotations: Mapping[str, str] = jfield("annotations", default_factory=FrozenDict)
    linux: Linux | None = jfield("linux", default=None)
