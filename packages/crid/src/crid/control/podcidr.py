"""The pod CIDR the kubelet hands over with UpdateRuntimeConfig.

crid's CNI configs carry their own ranges, so the CIDR is only recorded (in the volatile
runroot: the kubelet sends it again after a reboot) and reported in verbose Status info.
Dual-stack nodes send two CIDRs separated by a comma.
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

from crid.errors import InvalidRequestError
from crid.layout import Layout

__all__ = ["read_pod_cidr", "record_pod_cidr", "validate_pod_cidr"]


def _path(layout: Layout) -> Path:
    return layout.runroot / "pod-cidr"


def validate_pod_cidr(text: str) -> str:
    """The normalized CIDR list (``a/n,b/m``); InvalidRequestError when one is malformed."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return ",".join(str(ipaddress.ip_network(part, strict=False)) for part in parts)
    except ValueError as err:
        raise InvalidRequestError(f"pod CIDR {text!r}: {err}") from err


def _write(path: Path, value: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.replace(path)


async def record_pod_cidr(layout: Layout, text: str) -> str:
    """Validate and remember the pod CIDR; an empty one leaves the recorded one as it is."""
    value = validate_pod_cidr(text)
    if value:
        await asyncio.to_thread(_write, _path(layout), value)
    return value


async def read_pod_cidr(layout: Layout) -> str:
    """The recorded pod CIDR ("" when none was given)."""

    def read() -> str:
        try:
            return _path(layout).read_text().strip()
        except FileNotFoundError:
            return ""

    return await asyncio.to_thread(read)
