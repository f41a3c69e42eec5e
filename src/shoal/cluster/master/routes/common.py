"""What the route modules share: the master's state and the SSE framing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shoal.cluster.errors import NotFoundError, UnavailableError
from shoal.cluster.master.state import MasterState

KEEPALIVE_S = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def master_of(request: Request) -> MasterState:
    master: MasterState = request.app.state.master
    return master


def stream_slot(master: MasterState) -> None:
    """503 when the master already serves as many event streams as it allows."""
    if master.bus.full():
        raise UnavailableError(f"the master serves {master.bus.max_subscribers} event streams "
                               "already; close some (dashboard tabs, followers) or try later",
                               code="too_many_streams")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def checked_ref(ref: str, what: str) -> str:
    """An id or name from a path; one no database could hold is simply not found."""
    if "\x00" in ref or len(ref) > 255:
        raise NotFoundError(f"no {what} has the id {ref[:40]!r}", code=f"{what}_not_found")
    return ref
