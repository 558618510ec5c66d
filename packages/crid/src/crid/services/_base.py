"""What every RPC handler class shares: the daemon's :class:`~crid.context.Context`.

RuntimeService is composed of mixins, one per area (``sandbox.py``, ``container.py``,
``stats.py``, ...), each deriving from :class:`ServiceBase`. Handlers are decorated with
:func:`crid.rpc_errors.translate_errors`, read the request, make one call into the
orchestration layer, and build the response.
"""

from __future__ import annotations

from typing import Any

import grpc

from crid.context import Context

__all__ = ["RpcContext", "ServiceBase"]

RpcContext = grpc.aio.ServicerContext[Any, Any]


class ServiceBase:
    """Holds the daemon context for the handler mixins."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
