"""``/api/v1/events``: Server-Sent Events of workers, pools and jobs as they change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from shoal.cluster.master.auth import require
from shoal.cluster.master.routes.common import (
    KEEPALIVE_S,
    SSE_HEADERS,
    master_of,
    sse,
    stream_slot,
)
from shoal.cluster.master.schemas import errors

router = APIRouter(prefix="/api/v1/events", tags=["events"],
                   dependencies=[Depends(require("read"))])


@router.get("", responses={200: {"content": {"text/event-stream": {}}}, **errors(503)})
async def events(request: Request) -> StreamingResponse:
    """``event: worker|pool|job`` with the object as data, as they change (pools as summaries)."""
    stream_slot(master_of(request))
    return StreamingResponse(_events(request), media_type="text/event-stream",
                             headers=SSE_HEADERS)


async def _events(request: Request) -> AsyncIterator[str]:
    master = master_of(request)
    async with master.bus.subscribe("events") as queue:
        yield ": connected\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                yield ": keepalive\n\n"
                continue
            if master.bus.dropped(item):
                return
            kind, data = item
            yield sse(kind, data)
