"""Runtime-wide operations behind the CRI's control RPCs: the pod CIDR, resource updates of
running containers and pod cgroups, log reopening through conmon, checkpoints."""

from __future__ import annotations

from crid.control.checkpoint import checkpoint_container
from crid.control.logreopen import reopen_container_log
from crid.control.podcidr import read_pod_cidr, record_pod_cidr, validate_pod_cidr
from crid.control.resources import (
    apply_pod_resources,
    pod_resource_files,
    update_container_resources,
)

__all__ = [
    "apply_pod_resources",
    "checkpoint_container",
    "pod_resource_files",
    "read_pod_cidr",
    "record_pod_cidr",
    "reopen_container_log",
    "update_container_resources",
    "validate_pod_cidr",
]
