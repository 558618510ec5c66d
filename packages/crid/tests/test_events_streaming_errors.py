"""translate_errors on server-streaming handlers: items sent before an error arrive, then
the call ends with the mapped status (the stats and events streams rely on it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from crid._cri.v1 import api_pb2
from crid.errors import NotFoundError
from crid.rpc_errors import translate_errors


class Service:
    @translate_errors
    async def stream(
        self, request: api_pb2.StreamContainersRequest, context: object
    ) -> AsyncIterator[api_pb2.StreamContainersResponse]:
        yield api_pb2.StreamContainersResponse(containers=[api_pb2.Container(id="first")])
        raise NotFoundError(f"container {request.filter.id!r} not found")


async def test_streaming_handler_errors_become_status_codes() -> None:
    service = Service()
    handler = grpc.method_handlers_generic_handler(
        "test.Service",
        {
            "Stream": grpc.unary_stream_rpc_method_handler(
                service.stream,
                request_deserializer=api_pb2.StreamContainersRequest.FromString,
                response_serializer=api_pb2.StreamContainersResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    received: list[str] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream(
                "/test.Service/Stream",
                request_serializer=api_pb2.StreamContainersRequest.SerializeToString,
                response_deserializer=api_pb2.StreamContainersResponse.FromString,
            )
            request = api_pb2.StreamContainersRequest(filter=api_pb2.ContainerFilter(id="abc"))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for message in call(request):
                    received += [c.id for c in message.containers]
    finally:
        await server.stop(0)
    assert received == ["first"]
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "container 'abc' not found"
