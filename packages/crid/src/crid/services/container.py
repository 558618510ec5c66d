"""Container RPCs: create, start, stop, remove, status, list and ExecSync."""

from __future__ import annotations

import json

from crid._cri.v1 import api_pb2
from crid.container.execsync import exec_sync
from crid.errors import AmbiguousIdError, NotFoundError
from crid.rpc_errors import translate_errors
from crid.sandbox.lifecycle import Lifecycle
from crid.services._base import RpcContext, ServiceBase
from crid.services._cache import labels_match
from crid.services._messages import CONTAINER_STATES, container_status
from crid.translate import container_request

__all__ = ["ContainerRPCs"]


class ContainerRPCs(ServiceBase):
    """The container half of RuntimeService."""

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle.of(self.ctx)

    @translate_errors
    async def CreateContainer(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.CreateContainerRequest, context: RpcContext
    ) -> api_pb2.CreateContainerResponse:
        wanted = container_request(request.pod_sandbox_id, request.config)
        container = await self.lifecycle.containers.create(wanted)
        return api_pb2.CreateContainerResponse(container_id=container.id)

    @translate_errors
    async def StartContainer(  # noqa: N802
        self, request: api_pb2.StartContainerRequest, context: RpcContext
    ) -> api_pb2.StartContainerResponse:
        await self.lifecycle.containers.start(request.container_id)
        return api_pb2.StartContainerResponse()

    @translate_errors
    async def StopContainer(  # noqa: N802
        self, request: api_pb2.StopContainerRequest, context: RpcContext
    ) -> api_pb2.StopContainerResponse:
        await self.lifecycle.containers.stop(request.container_id, float(request.timeout))
        return api_pb2.StopContainerResponse()

    @translate_errors
    async def RemoveContainer(  # noqa: N802
        self, request: api_pb2.RemoveContainerRequest, context: RpcContext
    ) -> api_pb2.RemoveContainerResponse:
        await self.lifecycle.containers.remove(request.container_id)
        return api_pb2.RemoveContainerResponse()

    @translate_errors
    async def ContainerStatus(  # noqa: N802
        self, request: api_pb2.ContainerStatusRequest, context: RpcContext
    ) -> api_pb2.ContainerStatusResponse:
        c = self.ctx.registry.container(request.container_id)
        if not self.ctx.registry.visible(c.id):
            raise NotFoundError(f"container {request.container_id!r} not found (being created)")
        status = container_status(c)
        info = {}
        if request.verbose:
            info["info"] = json.dumps(
                {
                    "sandboxID": c.sandbox_id,
                    "name": c.name,
                    "pid": c.pid,
                    "conmonPid": c.conmon_pid,
                    "bundle": c.bundle,
                    "cgroupsPath": c.cgroup_path,
                    "runtimeHandler": c.runtime_handler,
                    "imageId": c.image_id,
                }
            )
        return api_pb2.ContainerStatusResponse(status=status, info=info)

    @translate_errors
    async def ListContainers(  # noqa: N802
        self, request: api_pb2.ListContainersRequest, context: RpcContext
    ) -> bytes:
        """The encoded ``ListContainersResponse`` (sent as it is); a poll that finds the
        records as the last one did gets the same bytes."""
        return self.container_polls.answer(
            self.ctx.registry.changes,
            request.SerializeToString(),
            lambda: self._list_containers(request),
        )

    def _list_containers(self, request: api_pb2.ListContainersRequest) -> bytes:
        registry = self.ctx.registry
        f = request.filter
        containers = [c for c in registry.containers() if registry.visible(c.id)]
        if f.id:
            try:
                found = registry.find_container(f.id)
            except AmbiguousIdError:
                found = None
            containers = [found] if found is not None and registry.visible(found.id) else []
        if f.pod_sandbox_id:
            try:
                pod = registry.find_sandbox(f.pod_sandbox_id)
            except AmbiguousIdError:
                pod = None
            containers = [c for c in containers if pod is not None and c.sandbox_id == pod.id]
        if f.HasField("state"):
            containers = [c for c in containers if CONTAINER_STATES[c.state] == f.state.state]
        if f.label_selector:
            selector = dict(f.label_selector)
            containers = [c for c in containers if labels_match(c.labels, selector)]
        complete = not (f.id or f.pod_sandbox_id or f.HasField("state") or f.label_selector)
        return self.container_list.encoded(
            self.container_items.messages(containers, complete=complete)
        )

    @translate_errors
    async def ExecSync(  # noqa: N802
        self, request: api_pb2.ExecSyncRequest, context: RpcContext
    ) -> api_pb2.ExecSyncResponse:
        result = await exec_sync(
            self.ctx, request.container_id, list(request.cmd), float(request.timeout)
        )
        return api_pb2.ExecSyncResponse(
            stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code
        )
