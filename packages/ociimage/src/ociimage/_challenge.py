"""Parsing ``WWW-Authenticate`` challenges (RFC 7235), as registries send them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Challenge", "parse_challenges"]

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TCHARS})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TCHARS}))\s*(,)?')
_SCHEME = re.compile(rf"\s*({_TCHARS})(?:\s+|$)")


@dataclass(frozen=True, kw_only=True)
class Challenge:
    """One challenge: ``Bearer realm="...",service="..."``; parameter names lower-cased."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in one header value; unparseable tails are ignored."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        while pos < len(header) and header[pos] in ", ":
            pos += 1
        m = _SCHEME.match(header, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while True:
            p = _PARAM.match(header, pos)
            if not p:
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = p.end()
            if not p.group(4):
                break
        out.append(Challenge(scheme=scheme, params=params))
    return out
