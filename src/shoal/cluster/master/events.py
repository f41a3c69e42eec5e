"""A broadcast of what changes, for the SSE endpoints.

Topic ``"events"`` carries ``("worker"|"pool"|"job", object)`` for
``/api/v1/events``; topic ``"output:<job id>"`` carries ``(stream, offset,
bytes)`` for ``/api/v1/jobs/{id}/stream``.  Each subscriber has its own queue,
bounded in items (``QUEUE_SIZE``) and in bytes (``limits.STREAM_QUEUE_BYTES``),
and all queues together hold at most ``TOTAL_BYTES``: a subscriber that falls
too far behind is dropped (its stream ends, and the client reconnects and reads
what it missed from the REST API) rather than letting the master's memory grow.
At most ``limits.MAX_STREAMS`` subscribers exist at once (:meth:`EventBus.full`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Any

from shoal.cluster.limits import MAX_STREAMS, STREAM_QUEUE_BYTES

QUEUE_SIZE = 2_000
TOTAL_BYTES = 64 << 20
EVENT_SIZE = 1024  # what an event object counts for (output counts its bytes)
_DROPPED = object()  # the last item of a subscriber that fell behind


class Subscription:
    """One subscriber's queue: ``await get()`` the next item."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._items: deque[tuple[Any, int]] = deque()
        self._ready = asyncio.Event()
        self.bytes = 0
        self.dropped = False

    def put(self, item: Any, size: int) -> bool:
        """Queue ``item``; False (and the subscriber dropped) if it is too far behind."""
        if self.dropped:
            return False
        if (len(self._items) >= QUEUE_SIZE or self.bytes + size > STREAM_QUEUE_BYTES
                or self._bus.queued + size > TOTAL_BYTES):
            self.drop()
            return False
        self._items.append((item, size))
        self.bytes += size
        self._bus.queued += size
        self._ready.set()
        return True

    def drop(self) -> None:
        self.dropped = True
        self._bus.queued -= self.bytes
        self.bytes = 0
        self._items.clear()
        self._items.append((_DROPPED, 0))
        self._ready.set()

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item, size = self._items.popleft()
        self.bytes -= size
        self._bus.queued -= size
        return item


class EventBus:
    def __init__(self, max_subscribers: int = MAX_STREAMS) -> None:
        self._topics: dict[str, set[Subscription]] = defaultdict(set)
        self.max_subscribers = max_subscribers
        self.subscribers = 0
        self.queued = 0  # bytes waiting in every queue

    def publish(self, topic: str, item: Any, size: int = EVENT_SIZE) -> None:
        for queue in list(self._topics.get(topic, ())):
            if not queue.put(item, size):
                for members in self._topics.values():
                    members.discard(queue)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._topics.get(topic))

    def full(self) -> bool:
        """Whether a new stream would pass ``max_subscribers`` (the route answers 503)."""
        return self.subscribers >= self.max_subscribers

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        """One queue receiving the items of every topic, in publication order."""
        queue = Subscription(self)
        self.subscribers += 1
        for topic in topics:
            self._topics[topic].add(queue)
        try:
            yield queue
        finally:
            self.subscribers -= 1
            for topic in topics:
                self._topics[topic].discard(queue)
                if not self._topics[topic]:
                    del self._topics[topic]
            if not queue.dropped:
                self.queued -= queue.bytes

    @staticmethod
    def dropped(item: Any) -> bool:
        return item is _DROPPED
