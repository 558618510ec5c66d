"""Containers: created under conmon from a translated config, run, stopped, removed."""

from __future__ import annotations

from crid.container.execsync import ExecResult, exec_sync
from crid.container.manager import Containers
from crid.container.monitor import ExitMonitor
from crid.container.request import ContainerRequest, container_name

__all__ = [
    "ContainerRequest",
    "Containers",
    "ExecResult",
    "ExitMonitor",
    "container_name",
    "exec_sync",
]
