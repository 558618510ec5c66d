"""A grpc.aio server interceptor that counts and times every CRI call.

It wraps the method's handler (unary or server-streaming) rather than the call, so the
time covers the whole answer, and reads the final status from the servicer context
(``translate_errors`` aborts with the mapped code; an unexpected exception is UNKNOWN).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from crid.metrics import instruments
from crid.metrics.instruments import observe_rpc

__all__ = ["MetricsInterceptor"]


def _code(context: Any, error: BaseException | None) -> str:
    code = context.code()
    if code is not None and code != grpc.StatusCode.OK:
        return str(code.name) if isinstance(code, grpc.StatusCode) else str(code)
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    if error is not None:
        return "UNKNOWN"
    return "OK"


def _wrap_unary(method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def unary(request: Any, context: Any) -> Any:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as err:
            error = err
            raise
        finally:
            observe_rpc(method, _code(context, error), time.perf_counter() - started)

    return unary


def _wrap_stream(method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            async for reply in behavior(request, context):
                yield reply
        except BaseException as err:
            error = err
            raise
        finally:
            observe_rpc(method, _code(context, error), time.perf_counter() - started)

    return stream


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Feeds ``crid_grpc_*`` for every unary and server-streaming method."""

    def __init__(self) -> None:
        instruments.enable()  # recording starts with the interceptor (metrics enabled)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = str(handler_call_details.method).rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(method, handler.unary_stream),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
