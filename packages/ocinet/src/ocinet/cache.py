"""The on-disk result cache, in libcni's layout so either can read the other's entries.

``<cache_dir>/results/<network>-<containerid>-<ifname>`` holds a ``cniCacheV1`` object:
the network configuration (base64), the attachment's netns, CNI_ARGS and capability
arguments, and the ADD result. DEL and CHECK read it for ``prevResult``; GC lists it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocinet.errors import ResultError
from ocinet.result import Result
from ocinet.runtime import RuntimeConf

__all__ = ["DEFAULT_CACHE_DIR", "CachedAttachment", "ResultCache"]

log = logging.getLogger(__name__)

#: libcni's default cache directory.
DEFAULT_CACHE_DIR = "/var/lib/cni"
_KIND = "cniCacheV1"


@dataclass(frozen=True, kw_only=True)
class CachedAttachment:
    """One cache entry: an attachment that ADD set up and DEL has not yet removed."""

    network_name: str
    container_id: str
    ifname: str
    netns: str = ""
    cni_args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    config: bytes = field(default=b"", repr=False)
    result: Mapping[str, Any] | None = field(default=None, hash=False)

    def runtime_conf(self) -> RuntimeConf:
        """The attachment as it was set up (for a DEL issued from the cache, e.g. by GC)."""
        return RuntimeConf(
            container_id=self.container_id,
            netns=self.netns,
            ifname=self.ifname,
            args=self.cni_args,
            capability_args=dict(self.capability_args),
        )

    def typed_result(self) -> Result | None:
        """The cached result parsed, or None if ADD produced none."""
        return Result.from_json(self.result) if self.result else None


class ResultCache:
    """Reads and writes cache entries under ``cache_dir`` (atomically, mode 0600)."""

    def __init__(self, cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR) -> None:
        self.cache_dir = Path(cache_dir)
        self.results_dir = self.cache_dir / "results"

    def path(self, network_name: str, container_id: str, ifname: str) -> Path:
        """Where the entry of one attachment lives."""
        return self.results_dir / f"{network_name}-{container_id}-{ifname}"

    def save(
        self, network_name: str, config: bytes, rt: RuntimeConf, result: Result | None
    ) -> Path:
        """Write (or replace) the entry for ``rt`` on ``network_name``.

        Atomic (a temporary file renamed over the entry), not fsynced: a crashed process
        leaves it whole in the page cache, and after a power loss the pod's namespace,
        links and NAT rules are gone anyway, while a DEL without its entry (lost or torn)
        still releases the address (host-local frees by container id). An fsync here cost
        every pod start ≈ 1 ms, and a disk's worst write latency."""
        obj: dict[str, Any] = {
            "kind": _KIND,
            "containerId": rt.container_id,
            "config": base64.b64encode(config).decode(),
            "ifName": rt.ifname,
            "networkName": network_name,
        }
        if rt.netns:
            obj["netns"] = rt.netns
        if rt.args:
            obj["cniArgs"] = [[k, v] for k, v in rt.args]
        if rt.capability_args:
            obj["capabilityArgs"] = dict(rt.capability_args)
        if result is not None:
            obj["result"] = result.to_json()
        target = self.path(network_name, rt.container_id, rt.ifname)
        self.results_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.results_dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(obj).encode())
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def readable(
        self, network_name: str, container_id: str, ifname: str
    ) -> CachedAttachment | None:
        """Like :meth:`load`, but an entry that cannot be read (torn by a crash, written
        by another tool) is None, logged: a DEL goes on without it, as for a missing
        one, rather than failing every retry and leaving the pod for good."""
        try:
            return self.load(network_name, container_id, ifname)
        except (OSError, ResultError) as err:
            log.warning("event=cni_cache_unreadable container=%s error=%s", container_id, err)
            return None

    def load(self, network_name: str, container_id: str, ifname: str) -> CachedAttachment | None:
        """The entry of one attachment, or None if there is none."""
        path = self.path(network_name, container_id, ifname)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return _parse_entry(data, path)

    def delete(self, network_name: str, container_id: str, ifname: str) -> None:
        """Remove the entry of one attachment (a no-op if it is gone)."""
        self.path(network_name, container_id, ifname).unlink(missing_ok=True)

    def attachments(
        self, *, network_name: str | None = None, container_id: str | None = None
    ) -> list[CachedAttachment]:
        """Every readable entry, optionally filtered; unreadable files are skipped and logged."""
        try:
            names = sorted(p.name for p in self.results_dir.iterdir())
        except FileNotFoundError:
            return []
        found: list[CachedAttachment] = []
        for name in names:
            if name.startswith("."):
                continue
            path = self.results_dir / name
            try:
                entry = _parse_entry(path.read_bytes(), path)
            except (OSError, ResultError) as err:
                log.warning("event=cni_cache_unreadable path=%s error=%s", path, err)
                continue
            if network_name is not None and entry.network_name != network_name:
                continue
            if container_id is not None and entry.container_id != container_id:
                continue
            found.append(entry)
        return found


def _parse_entry(data: bytes, path: Path) -> CachedAttachment:
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("kind") != _KIND:
            raise ValueError(f"not a {_KIND} entry")
        return CachedAttachment(
            network_name=str(obj["networkName"]),
            container_id=str(obj["containerId"]),
            ifname=str(obj["ifName"]),
            netns=str(obj.get("netns") or ""),
            cni_args=tuple((str(k), str(v)) for k, v in obj.get("cniArgs") or ()),
            capability_args=dict(obj.get("capabilityArgs") or {}),
            config=base64.b64decode(obj.get("config") or ""),
            result=obj.get("result") or None,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ResultError(f"cache entry {path} is unreadable: {err}") from err
