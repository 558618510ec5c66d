"""The typed shape of crid's configuration, with a documented default for every option.

Tables and option names follow ``crio.conf`` wherever the concept is the same, so a
CRI-O user can carry their knowledge (and most of their file) over. Each field's
``Meta(description=...)`` is the text ``crid config`` prints above it.
"""

from __future__ import annotations

import typing
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "POD_METRIC_GROUPS",
    "ApiConfig",
    "Config",
    "CridConfig",
    "ImageConfig",
    "MetricsConfig",
    "NRIConfig",
    "NetworkConfig",
    "RuntimeConfig",
    "RuntimeHandler",
    "StatsConfig",
]

DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "KILL",
)


class _Table(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A configuration table: unknown keys are errors, never silently ignored."""


class ApiConfig(_Table, frozen=True):
    """``[crid.api]``: where crid listens."""

    listen: Annotated[
        str, Meta(description="Path of the unix socket the CRI gRPC server listens on.")
    ] = "/run/crid/crid.sock"
    stream_address: Annotated[
        str,
        Meta(description="IP address the streaming server (exec, attach, port-forward) binds."),
    ] = "127.0.0.1"
    stream_port: Annotated[
        int,
        Meta(ge=0, le=65535, description="Port of the streaming server; 0 picks a free port."),
    ] = 0
    stream_tls_cert: Annotated[
        str,
        Meta(description="PEM certificate (chain) of the streaming server; empty: plain HTTP."),
    ] = ""
    stream_tls_key: Annotated[
        str,
        Meta(description="PEM private key of stream_tls_cert (empty: the key is in that file)."),
    ] = ""
    stream_idle_timeout: Annotated[
        str,
        Meta(description="Close a streaming connection after this long without traffic."),
    ] = "4h"
    stream_token_ttl: Annotated[
        str,
        Meta(description="How long an Exec/Attach/PortForward URL stays usable (used once)."),
    ] = "1m"  # noqa: S105 - a duration, not a secret
    stream_max_connections: Annotated[
        int,
        Meta(gt=0, description="Streaming connections served at once; more are refused (503)."),
    ] = 512
    stream_max_handshakes: Annotated[
        int,
        Meta(
            gt=0,
            description="Streaming connections still sending their request (no valid URL"
            " presented yet) at once; more are refused (503).",
        ),
    ] = 64
    grpc_max_recv_msg_size: Annotated[
        int, Meta(gt=0, description="Largest gRPC message crid accepts, in bytes.")
    ] = 80 * 1024 * 1024
    grpc_max_send_msg_size: Annotated[
        int, Meta(gt=0, description="Largest gRPC message crid sends, in bytes.")
    ] = 80 * 1024 * 1024
    shutdown_grace: Annotated[
        str,
        Meta(
            description="On SIGTERM, how long RPCs in flight may run on; then they are"
            " cancelled and rolled back."
        ),
    ] = "10s"


class RuntimeHandler(_Table, frozen=True):
    """``[crid.runtime.runtimes.<name>]``: one OCI runtime a RuntimeClass can name."""

    runtime_path: Annotated[
        str,
        Meta(
            description=(
                "Path of the OCI runtime binary; empty looks the handler's name up in PATH."
            )
        ),
    ] = ""
    runtime_root: Annotated[
        str,
        Meta(
            description=(
                "State directory passed to the runtime as --root; empty uses"
                " <runroot>/runtimes/<name>."
            )
        ),
    ] = ""
    runtime_type: Annotated[
        Literal["oci"], Meta(description="How crid drives the runtime: 'oci' (under conmon).")
    ] = "oci"


class RuntimeConfig(_Table, frozen=True):
    """``[crid.runtime]``: how containers are run."""

    default_runtime: Annotated[
        str,
        Meta(
            description=(
                "Handler used when a pod names no RuntimeClass; must be a key of"
                " [crid.runtime.runtimes]."
            )
        ),
    ] = "runc"
    cgroup_manager: Annotated[
        Literal["cgroupfs", "systemd"],
        Meta(
            description=(
                "Cgroup driver: 'cgroupfs' (crid writes cgroup directories), or 'systemd'"
                " (pods are slices, containers transient scopes; needs systemd as init)."
                " Must match the kubelet's cgroupDriver."
            )
        ),
    ] = "cgroupfs"
    conmon_cgroup: Annotated[
        str,
        Meta(
            pattern=r"^(pod|[A-Za-z0-9_.:\\-]+\.slice)$",
            description=(
                "With the systemd driver, where each conmon's scope goes: 'pod' (the pod's"
                " slice) or a slice name such as 'system.slice'."
            ),
        ),
    ] = "pod"
    conmon: Annotated[
        str, Meta(description="Path of the conmon binary; empty looks 'conmon' up in PATH.")
    ] = ""
    default_capabilities: Annotated[
        list[str], Meta(description="Capabilities a container gets unless it asks otherwise.")
    ] = msgspec.field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    seccomp_profile: Annotated[
        str,
        Meta(
            description=(
                "Seccomp profile used for RuntimeDefault; empty uses"
                " /usr/share/containers/seccomp.json, else crid's built-in profile."
            )
        ),
    ] = ""
    drop_infra_ctr: Annotated[
        bool,
        Meta(
            description=(
                "Pin pod namespaces without an infra (pause) container; false runs one per pod."
            )
        ),
    ] = True
    namespaces_dir: Annotated[
        str,
        Meta(
            description=(
                "Directory where pods' namespaces are pinned as bind mounts; empty uses"
                " <runroot>/ns."
            )
        ),
    ] = ""
    container_exits_dir: Annotated[
        str,
        Meta(
            description=(
                "Directory where conmon writes containers' exit codes; empty uses <runroot>/exits."
            )
        ),
    ] = ""
    runtime_timeout: Annotated[
        str,
        Meta(
            description=(
                "Longest wait for one OCI runtime command (state, start, kill, delete,"
                " update); past it the runtime is killed and the call fails"
                " (DEADLINE_EXCEEDED)."
            )
        ),
    ] = "1m"
    create_timeout: Annotated[
        str,
        Meta(
            description=(
                "Longest wait for conmon and the runtime to create a container; past it"
                " both are killed, the half-made container removed (DEADLINE_EXCEEDED)."
            )
        ),
    ] = "1m"
    cdi_spec_dirs: Annotated[
        list[str],
        Meta(
            description=(
                "Directories of CDI (Container Device Interface) spec files, JSON or YAML;"
                " a later directory overrides an earlier one for the same device."
            )
        ),
    ] = msgspec.field(default_factory=lambda: ["/etc/cdi", "/var/run/cdi"])
    runtimes: Annotated[
        dict[str, RuntimeHandler],
        Meta(description="OCI runtime handlers by name (the names RuntimeClasses use)."),
    ] = msgspec.field(default_factory=lambda: {"runc": RuntimeHandler()})


class ImageConfig(_Table, frozen=True):
    """``[crid.image]``: pulling and trusting images."""

    pause_image: Annotated[
        str, Meta(description="Image of the infra container, when drop_infra_ctr is false.")
    ] = "registry.k8s.io/pause:3.10"
    pause_command: Annotated[
        list[str],
        Meta(
            description=(
                "Command of the infra container; empty runs the pause image's entrypoint"
                " and command."
            )
        ),
    ] = msgspec.field(default_factory=list)
    signature_policy: Annotated[
        str, Meta(description="Signature policy (containers-policy.json format).")
    ] = "/etc/containers/policy.json"
    registries_conf: Annotated[
        str, Meta(description="registries.conf (v2) with search registries, mirrors and aliases.")
    ] = "/etc/containers/registries.conf"
    registries_conf_dir: Annotated[
        str, Meta(description="Directory of registries.conf drop-ins, read in name order.")
    ] = "/etc/containers/registries.conf.d"
    global_auth_file: Annotated[
        str,
        Meta(description="Registry credentials (auth.json format) used for every pull; optional."),
    ] = ""
    pull_progress_timeout: Annotated[
        str,
        Meta(
            description=(
                "Cancel a pull that makes no progress for this long (e.g. '90s', '2m'); '0s' never."
            )
        ),
    ] = "1m"
    registries_d: Annotated[
        str,
        Meta(
            description=(
                "Directory of registries.d YAML files: where signatures are looked up for"
                " the signature policy."
            )
        ),
    ] = "/etc/containers/registries.d"
    pinned_images: Annotated[
        list[str],
        Meta(
            description=(
                "Images reported as pinned (exempt from the kubelet's image garbage"
                " collection): exact names, or globs such as 'registry.example/infra/*';"
                " the pause image is always pinned."
            )
        ),
    ] = msgspec.field(default_factory=list)


class NetworkConfig(_Table, frozen=True):
    """``[crid.network]``: CNI."""

    network_dir: Annotated[str, Meta(description="Directory of CNI network configurations.")] = (
        "/etc/cni/net.d"
    )
    plugin_dirs: Annotated[
        list[str], Meta(description="Directories searched, in order, for CNI plugin binaries.")
    ] = msgspec.field(default_factory=lambda: ["/opt/cni/bin", "/usr/lib/cni"])
    cni_default_network: Annotated[
        str,
        Meta(description="Network pods join; empty takes the first configuration by file name."),
    ] = ""
    plugin_timeout: Annotated[
        str,
        Meta(
            description=(
                "Longest wait for one CNI plugin run (ADD, DEL, CHECK, GC); past it the"
                " plugin's process group is killed and the call fails (DEADLINE_EXCEEDED)."
            )
        ),
    ] = "1m"


class MetricsConfig(_Table, frozen=True):
    """``[crid.metrics]``: the Prometheus endpoint."""

    enable_metrics: Annotated[bool, Meta(description="Serve Prometheus metrics.")] = False
    metrics_host: Annotated[str, Meta(description="Address the metrics server binds.")] = (
        "127.0.0.1"
    )
    metrics_port: Annotated[
        int,
        Meta(
            ge=0, le=65535, description="Port of the metrics server; 0 picks a free port (logged)."
        ),
    ] = 9090


PodMetricGroup = Literal[
    "cpu", "memory", "network", "disk", "diskIO", "hugetlb", "oom", "process", "spec", "pressure"
]

#: CRI-O's metric group names, every one on by default.
POD_METRIC_GROUPS: tuple[PodMetricGroup, ...] = typing.get_args(PodMetricGroup)


class StatsConfig(_Table, frozen=True):
    """``[crid.stats]``: pod and container stats and metrics."""

    included_pod_metrics: Annotated[
        list[PodMetricGroup],
        Meta(
            description=(
                "Metric groups ListPodSandboxMetrics reports (CRI-O's names): cpu, memory,"
                " network, disk, diskIO, hugetlb, oom, process, spec, and pressure (PSI);"
                " container_last_seen and container_start_time_seconds are always reported."
            )
        ),
    ] = msgspec.field(default_factory=lambda: list(POD_METRIC_GROUPS))
    metrics_collection_period: Annotated[
        str,
        Meta(
            description=(
                "While pod metrics are asked for, sample them in the background this often"
                " (a scrape gets samples at most this old, each with its time)."
            )
        ),
    ] = "10s"


class NRIConfig(_Table, frozen=True):
    """``[crid.nri]``: Node Resource Interface plugins (CRI-O's option names)."""

    enable: Annotated[
        bool, Meta(description="Host NRI plugins: send them pod and container events.")
    ] = True
    socket_path: Annotated[
        str, Meta(description="Unix socket externally started NRI plugins connect to.")
    ] = "/var/run/nri/nri.sock"
    plugin_dir: Annotated[
        str,
        Meta(
            description="Directory of pre-installed plugins crid starts itself (files named"
            " <index>-<name>, e.g. 10-resources); a missing directory is fine."
        ),
    ] = "/opt/nri/plugins"
    plugin_config_dir: Annotated[
        str,
        Meta(
            description="Directory of configuration for pre-installed plugins"
            " (<index>-<name>.conf or <name>.conf), passed to them in Configure."
        ),
    ] = "/etc/nri/conf.d"
    plugin_registration_timeout: Annotated[
        str,
        Meta(description="How long a plugin may take to register and synchronize."),
    ] = "5s"
    plugin_request_timeout: Annotated[
        str,
        Meta(
            description="How long a plugin may take to answer an event; a plugin that takes"
            " longer is disconnected and the event goes on without it."
        ),
    ] = "2s"
    disable_connections: Annotated[
        bool,
        Meta(description="Do not listen on socket_path: only pre-installed plugins run."),
    ] = False


class CridConfig(_Table, frozen=True):
    """``[crid]``: paths and logging, plus the sub-tables."""

    root: Annotated[
        str, Meta(description="Persistent state: the state database and image storage.")
    ] = "/var/lib/crid"
    runroot: Annotated[
        str, Meta(description="Volatile state: bundles, conmon files, attach sockets.")
    ] = "/run/crid"
    clean_shutdown_file: Annotated[
        str,
        Meta(
            description=(
                "Written on a clean stop, removed at start; when it is missing at start,"
                " storage is checked and repaired before serving. Empty uses"
                " <root>/clean.shutdown."
            )
        ),
    ] = ""
    storage_driver: Annotated[
        Literal["overlay", "vfs"],
        Meta(description="Root filesystem driver: 'overlay', or 'vfs' (full copies)."),
    ] = "overlay"
    log_dir: Annotated[
        str, Meta(description="Default directory for container logs the kubelet does not place.")
    ] = "/var/log/crid/pods"
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], Meta(description="crid's own log level.")
    ] = "info"
    log_format: Annotated[
        Literal["text", "json"],
        Meta(description="crid's own log lines: 'text' (key=value) or 'json'."),
    ] = "text"
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    runtime: RuntimeConfig = msgspec.field(default_factory=RuntimeConfig)
    image: ImageConfig = msgspec.field(default_factory=ImageConfig)
    network: NetworkConfig = msgspec.field(default_factory=NetworkConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    stats: StatsConfig = msgspec.field(default_factory=StatsConfig)
    nri: NRIConfig = msgspec.field(default_factory=NRIConfig)


class Config(_Table, frozen=True):
    """The whole file: everything lives under ``[crid]``, as CRI-O's under ``[crio]``."""

    crid: CridConfig = msgspec.field(default_factory=CridConfig)
