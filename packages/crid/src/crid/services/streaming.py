"""Exec, Attach, PortForward: validate the request, hand out a streaming URL."""

from __future__ import annotations

from crid._cri.v1 import api_pb2
from crid.errors import StreamingError
from crid.rpc_errors import translate_errors
from crid.services._base import RpcContext, ServiceBase
from crid.streaming import AttachRequest, ExecRequest, StreamingServer
from crid.streaming.prepare import check_attach, check_exec, check_port_forward

__all__ = ["StreamingRPCs"]


class StreamingRPCs(ServiceBase):
    """The streaming RPCs; the daemon sets :attr:`streaming` once its server listens."""

    streaming: StreamingServer | None = None

    def _server(self) -> StreamingServer:
        if self.streaming is None:
            raise StreamingError("the streaming server is not running")
        return self.streaming

    @translate_errors
    async def Exec(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.ExecRequest, context: RpcContext
    ) -> api_pb2.ExecResponse:
        wanted = ExecRequest(
            container_id=request.container_id,
            command=tuple(request.cmd),
            tty=request.tty,
            stdin=request.stdin,
            stdout=request.stdout,
            stderr=request.stderr,
        )
        checked = check_exec(self.ctx, wanted)
        return api_pb2.ExecResponse(url=self._server().url_for(checked))

    @translate_errors
    async def Attach(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.AttachRequest, context: RpcContext
    ) -> api_pb2.AttachResponse:
        wanted = AttachRequest(
            container_id=request.container_id,
            tty=request.tty,
            stdin=request.stdin,
            stdout=request.stdout,
            stderr=request.stderr,
        )
        container = self.ctx.registry.container(request.container_id)
        config = api_pb2.ContainerConfig.FromString(container.config)
        checked = check_attach(self.ctx, wanted, has_stdin=config.stdin)
        return api_pb2.AttachResponse(url=self._server().url_for(checked))

    @translate_errors
    async def PortForward(  # noqa: N802 - the CRI names its RPCs
        self, request: api_pb2.PortForwardRequest, context: RpcContext
    ) -> api_pb2.PortForwardResponse:
        checked = check_port_forward(self.ctx, request.pod_sandbox_id, tuple(request.port))
        return api_pb2.PortForwardResponse(url=self._server().url_for(checked))
