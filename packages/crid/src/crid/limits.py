"""Upper bounds on what one CRI request may ask crid to remember or build.

A pod or container config is kept in memory and in the state database for the record's
whole life, copied into List and Status answers, and turned into an OCI config that
runc must accept. Whoever can reach the socket could otherwise make crid hold a
megabyte-long name or a million mounts per container. Each bound sits well above what
the kubelet's own API validation lets through (names of 253 characters, 256 KiB of
annotations), so a real kubelet never meets one; past it the request is refused with
InvalidArgument naming the field. The gRPC message size (``[crid.api]
grpc_max_recv_msg_size``) bounds a request as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crid._cri.v1 import api_pb2
from crid.errors import InvalidConfigError

__all__ = [
    "MAX_ARGV_BYTES",
    "MAX_DEVICES",
    "MAX_DNS_ENTRIES",
    "MAX_ENV",
    "MAX_MAP_BYTES",
    "MAX_MOUNTS",
    "MAX_NAME",
    "MAX_PATH",
    "MAX_PORT_MAPPINGS",
    "MAX_SYSCTLS",
    "check_argv",
    "check_container_config",
    "check_pod_config",
]

#: Names, namespaces, uids (the kubelet's DNS subdomains are at most 253).
MAX_NAME = 253
#: Labels, or annotations, of one pod or container: keys and values together (the API
#: server allows 256 KiB of annotations; the kubelet adds a few of its own).
MAX_MAP_BYTES = 512 * 1024
#: Paths: log paths, mount and device paths, working directory.
MAX_PATH = 4096
#: Command plus args, or an exec's argv, in bytes (Linux's ARG_MAX is 2 MiB with env).
MAX_ARGV_BYTES = 1024 * 1024
MAX_ENV = 10_000
MAX_MOUNTS = 1024
MAX_DEVICES = 1024
MAX_PORT_MAPPINGS = 1024
MAX_SYSCTLS = 256
#: DNS servers, searches or options each.
MAX_DNS_ENTRIES = 64


def _refuse(what: str, detail: str) -> InvalidConfigError:
    return InvalidConfigError(f"{what} {detail}")


def _name(what: str, value: str) -> None:
    if len(value) > MAX_NAME:
        raise _refuse(what, f"is {len(value)} characters long, over {MAX_NAME}")


def _path(what: str, value: str) -> None:
    if len(value) > MAX_PATH:
        raise _refuse(what, f"is {len(value)} characters long, over {MAX_PATH}")


def _map(what: str, values: Mapping[str, str]) -> None:
    size = sum(len(key) + len(value) for key, value in values.items())
    if size > MAX_MAP_BYTES:
        raise _refuse(what, f"hold {size} bytes, over {MAX_MAP_BYTES}")


def _count(what: str, items: Iterable[object], limit: int) -> None:
    count = sum(1 for _ in items)
    if count > limit:
        raise _refuse(what, f"number {count}, over {limit}")


def check_argv(what: str, argv: Iterable[str]) -> None:
    """An argv no longer than ``MAX_ARGV_BYTES`` in all."""
    size = sum(len(arg) + 1 for arg in argv)
    if size > MAX_ARGV_BYTES:
        raise _refuse(what, f"is {size} bytes long, over {MAX_ARGV_BYTES}")


def check_pod_config(config: api_pb2.PodSandboxConfig) -> None:
    """Refuse a PodSandboxConfig past any bound (InvalidConfigError)."""
    meta = config.metadata
    _name("pod name", meta.name)
    _name("pod namespace", meta.namespace)
    _name("pod uid", meta.uid)
    _name("pod hostname", config.hostname)
    _path("pod log_directory", config.log_directory)
    _map("pod labels", config.labels)
    _map("pod annotations", config.annotations)
    _count("pod port_mappings", config.port_mappings, MAX_PORT_MAPPINGS)
    _count("pod sysctls", config.linux.sysctls, MAX_SYSCTLS)
    _path("pod cgroup_parent", config.linux.cgroup_parent)
    dns = config.dns_config
    for field, entries in (
        ("servers", dns.servers),
        ("searches", dns.searches),
        ("options", dns.options),
    ):
        _count(f"pod DNS {field}", entries, MAX_DNS_ENTRIES)
        for entry in entries:
            _name(f"pod DNS {field} entry", entry)


def check_container_config(config: api_pb2.ContainerConfig) -> None:
    """Refuse a ContainerConfig past any bound (InvalidConfigError)."""
    _name("container name", config.metadata.name)
    _path("container image", config.image.image)
    _path("container log_path", config.log_path)
    _path("container working_dir", config.working_dir)
    _map("container labels", config.labels)
    _map("container annotations", config.annotations)
    check_argv("container command and args", [*config.command, *config.args])
    _count("container envs", config.envs, MAX_ENV)
    env_bytes = sum(len(kv.key) + len(kv.value) + 2 for kv in config.envs)
    if env_bytes > MAX_ARGV_BYTES:
        raise _refuse("container envs", f"are {env_bytes} bytes long, over {MAX_ARGV_BYTES}")
    _count("container mounts", config.mounts, MAX_MOUNTS)
    for mount in config.mounts:
        _path("mount container_path", mount.container_path)
        _path("mount host_path", mount.host_path)
    _count("container devices", config.devices, MAX_DEVICES)
    for device in config.devices:
        _path("device container_path", device.container_path)
        _path("device host_path", device.host_path)
