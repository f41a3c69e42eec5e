"""A broadcast of what changes, for the SSE endpoints.

Topic ``"events"`` carries ``("worker"|"pool"|"job", object)`` for
``/api/v1/events``; topic ``"output:<job id>"`` carries ``(stream, offset,
bytes)`` for ``/api/v1/jobs/{id}/stream``.  Each subscriber has its own bounded
queue; one that falls too far behind is dropped (its stream ends, and the client
reconnects and reads what it missed from the REST API) rather than letting the
master's memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 10_000
_DROPPED = object()  # put in a queue to end a subscriber that fell behind


class EventBus:
    def __init__(self) -> None:
        self._topics: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)

    def publish(self, topic: str, item: Any) -> None:
        for queue in list(self._topics.get(topic, ())):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                for members in self._topics.values():
                    members.discard(queue)
                queue.get_nowait()  # make room for the end marker
                queue.put_nowait(_DROPPED)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._topics.get(topic))

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[asyncio.Queue[Any]]:
        """One queue receiving the items of every topic, in publication order."""
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE)
        for topic in topics:
            self._topics[topic].add(queue)
        try:
            yield queue
        finally:
            for topic in topics:
                self._topics[topic].discard(queue)
                if not self._topics[topic]:
                    del self._topics[topic]

    @staticmethod
    def dropped(item: Any) -> bool:
        return item is _DROPPED
