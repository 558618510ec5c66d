"""NRI, the Node Resource Interface: plugins that hook into pod and container lifecycles.

For plugin authors this package is the client side of the protocol: :class:`Plugin`,
:class:`Stub` and the message types in :mod:`api` (generated from containerd/nri's
``api.proto``). Importing it starts nothing and needs no daemon.

crid's own side lives in :mod:`crid.nri.hooks` (what the pod and container managers
call, loading the rest with the first plugin), :mod:`crid.nri.domain` (crid's records
as NRI messages, plugins' answers applied) and :mod:`crid.nri.host` (plugins,
registration, event delivery); the protocol layers are :mod:`crid.nri.ttrpc` and
:mod:`crid.nri.mux`. The names below load on first access, so that crid itself can
import :mod:`crid.nri.hooks` without the protocol.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crid._nri.v1alpha1 import api_pb2 as api
    from crid.nri.plugin_link import ALL_EVENTS, event_mask
    from crid.nri.stub import DEFAULT_SOCKET, Plugin, Stub

__all__ = ["ALL_EVENTS", "DEFAULT_SOCKET", "Plugin", "Stub", "api", "event_mask"]

_HOMES = {
    "ALL_EVENTS": "crid.nri.plugin_link",
    "event_mask": "crid.nri.plugin_link",
    "DEFAULT_SOCKET": "crid.nri.stub",
    "Plugin": "crid.nri.stub",
    "Stub": "crid.nri.stub",
}


def __getattr__(name: str) -> object:
    if name == "api":
        value: object = importlib.import_module("crid._nri.v1alpha1.api_pb2")
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
