"""``runtime.v1.RuntimeService``: thin RPC handlers over crid's orchestration."""

from __future__ import annotations

import json

import msgspec

from crid import __version__
from crid._cri.v1 import api_pb2, api_pb2_grpc
from crid.control import read_pod_cidr
from crid.errors import RuntimeHandlerError
from crid.readiness import RUNTIME_READY, Condition, network_condition, runtime_condition
from crid.services._base import RpcContext, ServiceBase
from crid.services._unimplemented import unimplemented_rest
from crid.services.container import ContainerRPCs
from crid.services.events import EventRPCs
from crid.services.runtime_config import RuntimeConfigRPCs
from crid.services.sandbox import SandboxRPCs
from crid.services.stats import StatsRPCs
from crid.services.streaming import StreamingRPCs

__all__ = ["CRI_API_VERSION", "KUBELET_API_VERSION", "RUNTIME_NAME", "RuntimeService"]

RUNTIME_NAME = "crid"
CRI_API_VERSION = "v1"
KUBELET_API_VERSION = "0.1.0"


def _condition(condition: Condition) -> api_pb2.RuntimeCondition:
    return api_pb2.RuntimeCondition(
        type=condition.type,
        status=condition.status,
        reason=condition.reason,
        message=condition.message,
    )


@unimplemented_rest("RuntimeService")
class RuntimeService(
    SandboxRPCs,
    ContainerRPCs,
    StreamingRPCs,
    StatsRPCs,
    EventRPCs,
    RuntimeConfigRPCs,
    ServiceBase,
    api_pb2_grpc.RuntimeServiceServicer,
):
    """The CRI runtime service; RPCs no mixin defines answer UNIMPLEMENTED."""

    async def Version(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.VersionRequest, context: RpcContext
    ) -> api_pb2.VersionResponse:
        return api_pb2.VersionResponse(
            version=KUBELET_API_VERSION,
            runtime_name=RUNTIME_NAME,
            runtime_version=__version__,
            runtime_api_version=CRI_API_VERSION,
        )

    def _runtime_condition(self) -> Condition:
        """Ready when the default handler resolves: crid keeps it resolved while both its
        binaries are still there (two stats, where a search of PATH for each costs
        ≈ 70 µs of every Status call); otherwise why not, from the configuration."""
        try:
            self.ctx.handler("")
        except RuntimeHandlerError:
            return runtime_condition(self.ctx.config)
        return Condition(type=RUNTIME_READY, status=True)

    async def Status(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.StatusRequest, context: RpcContext
    ) -> api_pb2.StatusResponse:
        conditions = [
            self._runtime_condition(),
            network_condition(self.ctx.network.readiness),
        ]
        names = ["", *self.ctx.config.crid.runtime.runtimes]
        features = {name: await self.ctx.handler_features(name) for name in names}
        handlers = [
            api_pb2.RuntimeHandler(
                name=name,
                features=api_pb2.RuntimeHandlerFeatures(
                    recursive_read_only_mounts=found.recursive_read_only_mounts,
                    user_namespaces=found.user_namespaces,
                ),
            )
            for name, found in features.items()
        ]
        info: dict[str, str] = {}
        if request.verbose:
            info["config"] = json.dumps(msgspec.to_builtins(self.ctx.config))
            info["conditions"] = json.dumps([msgspec.to_builtins(c) for c in conditions])
            info["podCIDR"] = await read_pod_cidr(self.ctx.layout)
            info["runtimeHandlerFeatures"] = json.dumps(
                {name: msgspec.to_builtins(found) for name, found in features.items()}
            )
        return api_pb2.StatusResponse(
            status=api_pb2.RuntimeStatus(conditions=[_condition(c) for c in conditions]),
            info=info,
            runtime_handlers=handlers,
            # Supplemental groups: both policies are applied when the config is generated,
            # and ContainerStatus reports the user; nothing on the host decides it.
            features=api_pb2.RuntimeFeatures(
                supplemental_groups_policy=True, user_namespaces_host_network=False
            ),
        )
