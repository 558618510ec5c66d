"""Wrappers around the external binaries crid drives: the OCI runtime and conmon."""

from __future__ import annotations

from crid.oci.conmon import conmon_binary, conmon_version
from crid.oci.runtime import runtime_binary, runtime_version

__all__ = ["conmon_binary", "conmon_version", "runtime_binary", "runtime_version"]
