"""Wrappers around the external binaries crid drives: the OCI runtime and conmon."""

from __future__ import annotations

from crid.oci.conmon import (
    Conmon,
    ConmonOptions,
    CreatedContainer,
    conmon_binary,
    conmon_version,
    remove_attach_link,
)
from crid.oci.features import HandlerFeatures, RuntimeFeatureCache
from crid.oci.runtime import ContainerState, OCIRuntime, runtime_binary, runtime_version

__all__ = [
    "Conmon",
    "ConmonOptions",
    "ContainerState",
    "CreatedContainer",
    "HandlerFeatures",
    "OCIRuntime",
    "RuntimeFeatureCache",
    "conmon_binary",
    "conmon_version",
    "remove_attach_link",
    "runtime_binary",
    "runtime_version",
]
