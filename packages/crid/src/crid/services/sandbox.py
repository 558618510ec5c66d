"""Pod sandbox RPCs: RunPodSandbox, StopPodSandbox, RemovePodSandbox, status and list."""

from __future__ import annotations

import json

from crid._cri.v1 import api_pb2
from crid.errors import AmbiguousIdError, NotFoundError
from crid.rpc_errors import translate_errors
from crid.sandbox.lifecycle import Lifecycle
from crid.services._base import RpcContext, ServiceBase
from crid.services._cache import labels_match
from crid.services._messages import SANDBOX_STATES, sandbox_status
from crid.state import Sandbox
from crid.translate import pod_request

__all__ = ["SandboxRPCs"]


class SandboxRPCs(ServiceBase):
    """The pod sandbox half of RuntimeService."""

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle.of(self.ctx)

    @translate_errors
    async def RunPodSandbox(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.RunPodSandboxRequest, context: RpcContext
    ) -> api_pb2.RunPodSandboxResponse:
        pod = pod_request(request.config, request.runtime_handler)
        sandbox = await self.lifecycle.pods.run(pod)
        return api_pb2.RunPodSandboxResponse(pod_sandbox_id=sandbox.id)

    @translate_errors
    async def StopPodSandbox(  # noqa: N802
        self, request: api_pb2.StopPodSandboxRequest, context: RpcContext
    ) -> api_pb2.StopPodSandboxResponse:
        await self.lifecycle.pods.stop(request.pod_sandbox_id)
        return api_pb2.StopPodSandboxResponse()

    @translate_errors
    async def RemovePodSandbox(  # noqa: N802
        self, request: api_pb2.RemovePodSandboxRequest, context: RpcContext
    ) -> api_pb2.RemovePodSandboxResponse:
        await self.lifecycle.pods.remove(request.pod_sandbox_id)
        return api_pb2.RemovePodSandboxResponse()

    @translate_errors
    async def PodSandboxStatus(  # noqa: N802
        self, request: api_pb2.PodSandboxStatusRequest, context: RpcContext
    ) -> api_pb2.PodSandboxStatusResponse:
        sandbox = self.ctx.registry.sandbox(request.pod_sandbox_id)
        if not self.ctx.registry.visible(sandbox.id):
            raise NotFoundError(f"pod sandbox {request.pod_sandbox_id!r} not found (being created)")
        ips = list(sandbox.ips)
        status = sandbox_status(sandbox)
        info = {}
        if request.verbose:
            info["info"] = json.dumps(
                {
                    "id": sandbox.id,
                    "name": sandbox.name,
                    "namespaces": sandbox.namespaces,
                    "netns": sandbox.namespaces.get("network", ""),
                    "ips": ips,
                    "cgroupParent": sandbox.cgroup_parent,
                    "hostname": sandbox.hostname,
                    "network": sandbox.network,
                    "runtimeHandler": sandbox.runtime_handler,
                    "sandboxDir": str(self.ctx.layout.sandbox_dir(sandbox.id)),
                    "containers": [c.id for c in self.ctx.registry.containers(sandbox.id)],
                }
            )
        return api_pb2.PodSandboxStatusResponse(status=status, info=info)

    @translate_errors
    async def ListPodSandbox(  # noqa: N802
        self, request: api_pb2.ListPodSandboxRequest, context: RpcContext
    ) -> bytes:
        """The encoded ``ListPodSandboxResponse`` (sent as it is); a poll that finds the
        records as the last one did gets the same bytes."""
        return self.sandbox_polls.answer(
            self.ctx.registry.changes,
            request.SerializeToString(),
            lambda: self._list_sandboxes(request),
        )

    def _list_sandboxes(self, request: api_pb2.ListPodSandboxRequest) -> bytes:
        registry = self.ctx.registry
        sandboxes: list[Sandbox] = [s for s in registry.sandboxes() if registry.visible(s.id)]
        f = request.filter
        if f.id:
            try:
                found = self.ctx.registry.find_sandbox(f.id)
            except AmbiguousIdError:
                found = None
            sandboxes = [found] if found is not None and registry.visible(found.id) else []
        if f.HasField("state"):
            sandboxes = [s for s in sandboxes if SANDBOX_STATES[s.state] == f.state.state]
        if f.label_selector:
            selector = dict(f.label_selector)
            sandboxes = [s for s in sandboxes if labels_match(s.labels, selector)]
        complete = not (f.id or f.HasField("state") or f.label_selector)
        return self.sandbox_list.encoded(self.sandbox_items.messages(sandboxes, complete=complete))
