"""NRI, the Node Resource Interface: plugins that hook into pod and container lifecycles.

For plugin authors this package is the client side of the protocol: :class:`Plugin`,
:class:`Stub` and the message types in :mod:`api` (generated from containerd/nri's
``api.proto``). Importing it starts nothing and needs no daemon.

crid's own side lives in :mod:`crid.nri.host` (plugins, registration, event delivery)
and :mod:`crid.nri.hooks` (what the pod and container managers call); the protocol
layers are :mod:`crid.nri.ttrpc` and :mod:`crid.nri.mux`.
"""

from __future__ import annotations

from crid._nri.v1alpha1 import api_pb2 as api
from crid.nri.plugin_link import ALL_EVENTS, event_mask
from crid.nri.stub import DEFAULT_SOCKET, Plugin, Stub

__all__ = ["ALL_EVENTS", "DEFAULT_SOCKET", "Plugin", "Stub", "api", "event_mask"]
