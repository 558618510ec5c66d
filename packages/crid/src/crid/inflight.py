"""The unary RPCs being answered, so that a clean stop can end them and wait for them.

grpc.aio's ``server.stop(grace)`` refuses new calls and, once the grace period is over,
cancels the calls still running, but it returns without waiting for their handlers to
unwind. :class:`InFlight` (a server interceptor) knows each handler's task: the daemon
cancels what is left after the grace period and waits until every handler has run its
``except``/``finally`` code (rollbacks included) before it closes the state database.

It also lets a handler answer with ``bytes``: an answer already encoded (the pod metrics,
kept encoded, see :mod:`crid.services._metrics_messages`) is sent as it is instead of
being serialized again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

__all__ = ["InFlight", "passing_bytes"]


def passing_bytes(
    serializer: Callable[[Any], bytes] | None,
) -> Callable[[Any], bytes] | None:
    """``serializer``, except that an answer that is already ``bytes`` goes as it is."""
    if serializer is None:
        return None

    def serialize(message: Any) -> bytes:
        return message if isinstance(message, bytes) else serializer(message)

    return serialize


class InFlight(grpc.aio.ServerInterceptor):
    """Tracks the task of every unary handler while it runs."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def _wrap(self, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                return await behavior(request, context)
            finally:
                if task is not None:
                    self._tasks.discard(task)

        return unary

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
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                handler.unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=passing_bytes(handler.response_serializer),
            )
        if handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=passing_bytes(handler.response_serializer),
        )

    async def cancel(self, timeout: float) -> bool:
        """Cancel every handler still running and wait up to ``timeout`` seconds for them
        to finish unwinding; True if none is left."""
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=timeout)
        return not pending
