"""The container state a runtime reports (runtime-spec ``runtime.md``, ``state`` operation)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from ocispec._model import FrozenDict, JSONModel, jfield, model

__all__ = ["ContainerStatus", "State"]


class ContainerStatus(StrEnum):
    """The lifecycle status of a container."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"


@model
class State(JSONModel):
    """The state of a container, as ``runc state`` prints it (runc adds keys kept in ``extra``)."""

    oci_version: str = jfield("ociVersion", omitempty=False)
    id: str = jfield("id", omitempty=False)
    status: str = jfield("status", omitempty=False)
    pid: int = jfield("pid", default=0)
    bundle: str = jfield("bundle", omitempty=False)
    annotations: Mapping[str, str] = jfield("annotations", default_factory=FrozenDict)
