"""Pod sandboxes: pinned namespaces, shared files, pod cgroup and network.

The package itself exports only the plain data types, so ``crid.container`` can use
them without importing the orchestration; :class:`crid.sandbox.lifecycle.Lifecycle`
and :class:`crid.sandbox.manager.Pods` are imported from their modules.
"""

from __future__ import annotations

from crid.sandbox.files import DNS, SandboxFiles
from crid.sandbox.request import PodRequest

__all__ = ["DNS", "PodRequest", "SandboxFiles"]
