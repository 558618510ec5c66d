"""Image configuration (image-spec v1.1.1 ``config.md``), also Docker's ``container.image.v1``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ocispec._model import FrozenDict, JSONModel, jfield, model
from ocispec.image.platform import Platform

__all__ = ["ExecutionConfig", "History", "ImageConfig", "RootFS"]


@model
class ExecutionConfig(JSONModel):
    """The ``config`` section: defaults for running a container from the image.

    ``exposed_ports`` and ``volumes`` are sets (Go's ``map[string]struct{}``). Docker's
    extra keys (``Hostname``, ``Healthcheck``, ``OnBuild``...) stay in ``extra``.
    """

    user: str = jfield("User", default="")
    exposed_ports: frozenset[str] = jfield("ExposedPorts", default=frozenset())
    env: Sequence[str] = jfield("Env", default=())
    entrypoint: Sequence[str] = jfield("Entrypoint", default=())
    cmd: Sequence[str] = jfield("Cmd", default=())
    volumes: frozenset[str] = jfield("Volumes", default=frozenset())
    working_dir: str = jfield("WorkingDir", default="")
    labels: Mapping[str, str] = jfield("Labels", default_factory=FrozenDict)
    stop_signal: str = jfield("StopSignal", default="")
    args_escaped: bool = jfield("ArgsEscaped", default=False)


@model
class RootFS(JSONModel):
    """The layers' uncompressed digests (DiffIDs), bottom first."""

    type: str = jfield("type", omitempty=False, default="layers")
    diff_ids: Sequence[str] = jfield("diff_ids", omitempty=False, default=())


@model
class History(JSONModel):
    """One step of the image's build history; ``empty_layer`` steps made no layer."""

    created: str = jfield("created", default="")
    created_by: str = jfield("created_by", default="")
    author: str = jfield("author", default="")
    comment: str = jfield("comment", default="")
    empty_layer: bool = jfield("empty_layer", default=False)


@model
class ImageConfig(JSONModel):
    """The image configuration document (the blob a manifest's ``config`` points to).

    ``created`` is kept as the RFC 3339 text it was written with.
    """

    created: str = jfield("created", default="")
    author: str = jfield("author", default="")
    architecture: str = jfield("architecture", omitempty=False)
    os: str = jfield("os", omitempty=False)
    os_version: str = jfield("os.version", default="")
    os_features: Sequence[str] = jfield("os.features", default=())
    variant: str = jfield("variant", default="")
    config: ExecutionConfig = jfield("config", omitempty=False, default_factory=ExecutionConfig)
    rootfs: RootFS = jfield("rootfs", omitempty=False, default_factory=RootFS)
    history: Sequence[History] = jfield("history", default=())

    @property
    def platform(self) -> Platform:
        """The platform fields of this config as a :class:`Platform`."""
        return Platform(
            architecture=self.architecture,
            os=self.os,
            os_version=self.os_version,
            os_features=self.os_features,
            variant=self.variant,
        )
