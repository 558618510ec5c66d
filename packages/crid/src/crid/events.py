"""Container and pod lifecycle events, fanned out to any number of subscribers.

``GetContainerEvents`` streams these; the Stream* RPCs use them to know when to send.
Publishing never blocks: a subscriber that falls ``capacity`` events behind is dropped
(its stream ends) rather than slowing crid down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Event", "EventBus", "EventKind"]


class EventKind(StrEnum):
    """What happened (the CRI's ContainerEventType, plus the pod's own events)."""

    CONTAINER_CREATED = "container_created"
    CONTAINER_STARTED = "container_started"
    CONTAINER_STOPPED = "container_stopped"
    CONTAINER_DELETED = "container_deleted"


@dataclass(frozen=True, kw_only=True)
class Event:
    """One lifecycle event of a container (or of a pod's sandbox, with its id as both)."""

    kind: EventKind
    container_id: str
    sandbox_id: str
    at_ns: int = field(default_factory=time.time_ns)


class _Subscription:
    def __init__(self, capacity: int) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(capacity)
        self.dropped = False


class EventBus:
    """Fan-out of :class:`Event` to subscribers."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._subscribers: set[_Subscription] = set()

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber (never blocks)."""
        for subscription in list(self._subscribers):
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscription.dropped = True
                self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def subscribe(self) -> AsyncIterator[Event]:
        """Events from now on, until the consumer stops or falls too far behind."""
        subscription = _Subscription(self._capacity)
        self._subscribers.add(subscription)
        try:
            while True:
                if subscription.dropped and subscription.queue.empty():
                    return
                event = await subscription.queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every subscription (at shutdown)."""
        for subscription in list(self._subscribers):
            subscription.dropped = True
            try:
                subscription.queue.put_nowait(None)
            except asyncio.QueueFull:
                continue
        self._subscribers.clear()
