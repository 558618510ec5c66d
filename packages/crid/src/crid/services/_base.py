"""What every RPC handler class shares: the daemon's :class:`~crid.context.Context`.

RuntimeService is composed of mixins, one per area (``sandbox.py``, ``container.py``,
``stats.py``, ...), each deriving from :class:`ServiceBase`. Handlers are decorated with
:func:`crid.rpc_errors.translate_errors`, read the request, make one call into the
orchestration layer, and build the response.
"""

from __future__ import annotations

from typing import Any

import grpc

from crid._cri.v1 import api_pb2
from crid.context import Context
from crid.services._cache import EncodedResponseCache, MessageCache, PollMemo
from crid.services._messages import container_item, sandbox_item
from crid.state import Container, Sandbox

__all__ = ["RpcContext", "ServiceBase"]

RpcContext = grpc.aio.ServicerContext[Any, Any]


def _record_id(record: Sandbox | Container) -> str:
    return record.id


class ServiceBase:
    """Holds the daemon context, and the answer caches the List and Stream RPCs share."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        #: List items per record object (records are frozen and replaced on change).
        self.sandbox_items: MessageCache[Sandbox, api_pb2.PodSandbox] = MessageCache(
            sandbox_item, _record_id
        )
        self.container_items: MessageCache[Container, api_pb2.Container] = MessageCache(
            container_item, _record_id
        )
        #: The last ListPodSandbox / ListContainers answers (sent serialized).
        self.sandbox_list: EncodedResponseCache[
            api_pb2.PodSandbox, api_pb2.ListPodSandboxResponse
        ] = EncodedResponseCache(lambda items: api_pb2.ListPodSandboxResponse(items=items))
        self.container_list: EncodedResponseCache[
            api_pb2.Container, api_pb2.ListContainersResponse
        ] = EncodedResponseCache(lambda items: api_pb2.ListContainersResponse(containers=items))
        #: The answers of the last polls of each List RPC, while nothing they show changed.
        self.sandbox_polls = PollMemo()
        self.container_polls = PollMemo()
        self.pod_stats_polls = PollMemo()
        self.container_stats_polls = PollMemo()
