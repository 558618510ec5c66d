"""crid's memory of pods and containers: records, the SQLite database, the live registry."""

from __future__ import annotations

from crid.state.db import StateDB
from crid.state.models import (
    Container,
    ContainerMeta,
    ContainerState,
    ContainerUser,
    PodMeta,
    Sandbox,
    SandboxState,
)
from crid.state.registry import Registry

__all__ = [
    "Container",
    "ContainerMeta",
    "ContainerState",
    "ContainerUser",
    "PodMeta",
    "Registry",
    "Sandbox",
    "SandboxState",
    "StateDB",
]
