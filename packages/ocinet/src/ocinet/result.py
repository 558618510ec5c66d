"""Typed CNI results and their conversion between spec versions.

Results are held in one model (the 1.1 shape, a superset of the others) and rendered in
whichever version a plugin or caller asks for: 0.1.0/0.2.0 (``ip4``/``ip6``), 0.3.x/0.4.0
(``ips`` carry ``version``), 1.0.0 and 1.1.0 (route and interface extras).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ocinet.errors import ResultError
from ocinet.version import SUPPORTED_VERSIONS, parse_version

__all__ = ["DNS", "IPConfig", "Interface", "Result", "Route", "VersionInfo"]


@dataclass(frozen=True, kw_only=True)
class Interface:
    """An interface a plugin created or configured (``sandbox`` is the netns path)."""

    name: str
    mac: str = ""
    mtu: int | None = None
    sandbox: str = ""
    socket_path: str = ""
    pci_id: str = ""


@dataclass(frozen=True, kw_only=True)
class IPConfig:
    """An address (CIDR notation), its gateway, and the index of its interface."""

    address: str
    gateway: str | None = None
    interface: int | None = None

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address without its prefix length."""
        return ipaddress.ip_interface(self.address).ip

    @property
    def family(self) -> int:
        """4 or 6."""
        return ipaddress.ip_interface(self.address).version


@dataclass(frozen=True, kw_only=True)
class Route:
    """A route; the 1.1 extras (mtu, advmss, priority, table, scope) are optional."""

    dst: str
    gw: str | None = None
    mtu: int | None = None
    advmss: int | None = None
    priority: int | None = None
    table: int | None = None
    scope: int | None = None

    @property
    def family(self) -> int:
        """4 or 6, from the destination."""
        return ipaddress.ip_network(self.dst, strict=False).version


@dataclass(frozen=True, kw_only=True)
class DNS:
    """DNS settings a plugin reports."""

    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """Whether nothing is set (then it is left out of the JSON)."""
        return not (self.nameservers or self.domain or self.search or self.options)


@dataclass(frozen=True, kw_only=True)
class VersionInfo:
    """What a plugin answered to VERSION."""

    cni_version: str
    supported_versions: tuple[str, ...]

    def supports(self, version: str) -> bool:
        """Whether the plugin speaks ``version``."""
        return version in self.supported_versions


@dataclass(frozen=True, kw_only=True)
class Result:
    """A plugin chain's result (ADD) in ocinet's version-independent model."""

    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = field(default_factory=DNS)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | bytes | str) -> Result:
        """Parse a result in any supported version (the ``cniVersion`` field decides)."""
        try:
            obj = json.loads(data) if isinstance(data, bytes | str) else data
        except ValueError as err:
            raise ResultError(f"result is not JSON: {err}") from err
        if not isinstance(obj, Mapping):
            raise ResultError("result is not a JSON object")
        version = obj.get("cniVersion")
        if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
            raise ResultError(f"result has unsupported cniVersion {version!r}")
        try:
            if parse_version(version) < (0, 3, 0):
                return _parse_legacy(version, obj)
            return _parse_current(version, obj)
        except (KeyError, TypeError, ValueError) as err:
            raise ResultError(f"malformed {version} result: {err}") from err

    def convert(self, version: str) -> Result:
        """The same result labelled as ``version`` (fields it cannot hold are dropped)."""
        if version not in SUPPORTED_VERSIONS:
            raise ResultError(f"cannot convert a result to unsupported version {version!r}")
        return Result.from_json(self.to_json(version))

    def to_json(self, version: str | None = None) -> dict[str, Any]:
        """The result as the JSON object of ``version`` (default: its own)."""
        version = version or self.cni_version
        if version not in SUPPORTED_VERSIONS:
            raise ResultError(f"cannot render a result as unsupported version {version!r}")
        if parse_version(version) < (0, 3, 0):
            return _render_legacy(self, version)
        return _render_current(self, version)

    def to_bytes(self, version: str | None = None) -> bytes:
        """:meth:`to_json` encoded."""
        return json.dumps(self.to_json(version)).encode()


def _parse_dns(obj: Any) -> DNS:
    if not obj:
        return DNS()
    return DNS(
        nameservers=tuple(obj.get("nameservers") or ()),
        domain=str(obj.get("domain") or ""),
        search=tuple(obj.get("search") or ()),
        options=tuple(obj.get("options") or ()),
    )


def _render_dns(dns: DNS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if dns.nameservers:
        out["nameservers"] = list(dns.nameservers)
    if dns.domain:
        out["domain"] = dns.domain
    if dns.search:
        out["search"] = list(dns.search)
    if dns.options:
        out["options"] = list(dns.options)
    return out


def _opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return int(value) if value is not None else None


def _parse_route(obj: Mapping[str, Any]) -> Route:
    dst = str(obj["dst"])
    ipaddress.ip_network(dst, strict=False)
    gw = obj.get("gw")
    if gw:
        ipaddress.ip_address(gw)
    return Route(
        dst=dst,
        gw=gw or None,
        mtu=_opt_int(obj, "mtu"),
        advmss=_opt_int(obj, "advmss"),
        priority=_opt_int(obj, "priority"),
        table=_opt_int(obj, "table"),
        scope=_opt_int(obj, "scope"),
    )


def _render_route(route: Route, extras: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"dst": route.dst}
    if route.gw:
        out["gw"] = route.gw
    if extras:
        for key in ("mtu", "advmss", "priority", "table", "scope"):
            value = getattr(route, key)
            if value is not None:
                out[key] = value
    return out


def _parse_ip(obj: Mapping[str, Any]) -> IPConfig:
    address = str(obj["address"])
    ipaddress.ip_interface(address)
    gateway = obj.get("gateway")
    if gateway:
        ipaddress.ip_address(gateway)
    iface = obj.get("interface")
    return IPConfig(
        address=address,
        gateway=gateway or None,
        interface=int(iface) if iface is not None else None,
    )


def _parse_current(version: str, obj: Mapping[str, Any]) -> Result:
    interfaces = tuple(
        Interface(
            name=str(i["name"]),
            mac=str(i.get("mac") or ""),
            mtu=_opt_int(i, "mtu"),
            sandbox=str(i.get("sandbox") or ""),
            socket_path=str(i.get("socketPath") or ""),
            pci_id=str(i.get("pciID") or ""),
        )
        for i in obj.get("interfaces") or ()
    )
    return Result(
        cni_version=version,
        interfaces=interfaces,
        ips=tuple(_parse_ip(ip) for ip in obj.get("ips") or ()),
        routes=tuple(_parse_route(r) for r in obj.get("routes") or ()),
        dns=_parse_dns(obj.get("dns")),
    )


def _render_current(result: Result, version: str) -> dict[str, Any]:
    v1 = parse_version(version) >= (1, 0, 0)
    out: dict[str, Any] = {"cniVersion": version}
    if result.interfaces:
        rendered = []
        for iface in result.interfaces:
            item: dict[str, Any] = {"name": iface.name}
            if iface.mac:
                item["mac"] = iface.mac
            if v1 and iface.mtu is not None:
                item["mtu"] = iface.mtu
            if iface.sandbox:
                item["sandbox"] = iface.sandbox
            if v1 and iface.socket_path:
                item["socketPath"] = iface.socket_path
            if v1 and iface.pci_id:
                item["pciID"] = iface.pci_id
            rendered.append(item)
        out["interfaces"] = rendered
    if result.ips:
        ips = []
        for ip in result.ips:
            entry: dict[str, Any] = {}
            if not v1:
                entry["version"] = str(ip.family)
            if ip.interface is not None:
                entry["interface"] = ip.interface
            entry["address"] = ip.address
            if ip.gateway:
                entry["gateway"] = ip.gateway
            ips.append(entry)
        out["ips"] = ips
    if result.routes:
        out["routes"] = [_render_route(r, extras=v1) for r in result.routes]
    if not result.dns.is_empty():
        out["dns"] = _render_dns(result.dns)
    return out


def _parse_legacy(version: str, obj: Mapping[str, Any]) -> Result:
    ips: list[IPConfig] = []
    routes: list[Route] = []
    for key in ("ip4", "ip6"):
        block = obj.get(key)
        if not block:
            continue
        address = str(block["ip"])
        ipaddress.ip_interface(address)
        ips.append(IPConfig(address=address, gateway=block.get("gateway") or None))
        routes.extend(_parse_route(r) for r in block.get("routes") or ())
    return Result(
        cni_version=version, ips=tuple(ips), routes=tuple(routes), dns=_parse_dns(obj.get("dns"))
    )


def _render_legacy(result: Result, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"cniVersion": version}
    for family, key in ((4, "ip4"), (6, "ip6")):
        matching: Sequence[IPConfig] = [ip for ip in result.ips if ip.family == family]
        if not matching:
            continue
        first = matching[0]
        block: dict[str, Any] = {"ip": first.address}
        if first.gateway:
            block["gateway"] = first.gateway
        routes = [_render_route(r, extras=False) for r in result.routes if r.family == family]
        if routes:
            block["routes"] = routes
        out[key] = block
    if not result.dns.is_empty():
        out["dns"] = _render_dns(result.dns)
    return out
