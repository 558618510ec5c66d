"""Pod sandboxes: pinned namespaces, shared files, pod cgroup and network."""

from __future__ import annotations

from crid.sandbox.files import DNS, SandboxFiles
from crid.sandbox.lifecycle import Lifecycle
from crid.sandbox.manager import Pods
from crid.sandbox.request import PodRequest

__all__ = ["DNS", "Lifecycle", "PodRequest", "Pods", "SandboxFiles"]
