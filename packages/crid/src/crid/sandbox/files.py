"""The files a pod's containers share: hostname, /etc/hosts, resolv.conf and /dev/shm.

They live in ``Layout.sandbox_dir(id)`` and are bind-mounted into every container of
the pod. ``/dev/shm`` is a sized tmpfs mounted there (or the host's /dev/shm when the
pod uses the node's IPC namespace).
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from crid.errors import CridError
from ocistore import mounts

__all__ = ["DNS", "SandboxFiles", "remove_files", "resolv_conf", "write_files"]

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True, kw_only=True)
class DNS:
    """A pod's DNSConfig: servers, search domains, resolver options."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SandboxFiles:
    """Where a pod's shared files are on the host."""

    directory: Path

    @property
    def hostname(self) -> Path:
        return self.directory / "hostname"

    @property
    def hosts(self) -> Path:
        return self.directory / "hosts"

    @property
    def resolv_conf(self) -> Path:
        return self.directory / "resolv.conf"

    @property
    def shm(self) -> Path:
        return self.directory / "shm"


def resolv_conf(dns: DNS | None, host: Path = HOST_RESOLV_CONF) -> str:
    """The pod's resolv.conf: from its DNSConfig, else a copy of the host's."""
    if dns is None or not (dns.servers or dns.searches or dns.options):
        try:
            return host.read_text()
        except OSError:
            return ""
    lines = [f"nameserver {server}" for server in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def hosts_file(hostname: str) -> str:
    """The pod's /etc/hosts: loopback names and its own hostname."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if hostname:
        lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def write_files(
    files: SandboxFiles, *, hostname: str, dns: DNS | None, shm_size: int, host_ipc: bool
) -> None:
    """Create the directory, the three files and the /dev/shm mount (blocking)."""
    files.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files.hostname.write_text(hostname + "\n")
    files.hosts.write_text(hosts_file(hostname))
    files.resolv_conf.write_text(resolv_conf(dns))
    if host_ipc:
        return
    files.shm.mkdir(exist_ok=True, mode=0o1777)
    try:
        mounts.mount(
            "shm",
            str(files.shm),
            "tmpfs",
            mounts.MS_NOSUID | mounts.MS_NODEV | mounts.MS_NOEXEC,
            f"mode=1777,size={shm_size}",
        )
    except OSError as err:
        raise CridError(f"cannot mount the pod's /dev/shm at {files.shm}: {err}") from err


def remove_files(files: SandboxFiles) -> None:
    """Unmount /dev/shm and delete the directory (idempotent, blocking)."""
    try:
        mounts.umount(str(files.shm), mounts.MNT_DETACH, missing_ok=True)
    except OSError as err:
        if err.errno != errno.EBUSY:
            raise CridError(f"cannot unmount {files.shm}: {err}") from err
    if os.path.ismount(files.shm):
        raise CridError(f"{files.shm} is still mounted")
    shutil.rmtree(files.directory, ignore_errors=True)
