"""What the master lets in: request bodies up to a size, and so many requests at once.

Two ASGI layers around the app, so that no request can make the master's
memory grow without bound (issue 11):

* a body over ``limits.MAX_BODY`` is refused with 413 ``body_too_large``: at
  once from its Content-Length, or as soon as a chunked body passes the limit
  (before the JSON is parsed);
* at most ``MAX_ACTIVE`` ordinary requests are served at once (each one holds
  its answer until uvicorn has handed all but 64 KiB of it to the socket);
  others wait up to ``WAIT_S`` for their turn, then get 503 ``busy``.  Event
  streams are not counted here (the event bus bounds them).

The error bodies come from :mod:`.errors`, where every error is worded.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shoal.cluster.limits import MAX_BODY
from shoal.cluster.master.auth import is_event_stream
from shoal.cluster.master.errors import BodyTooLarge, error_response, too_large_message

MAX_ACTIVE = 64
WAIT_S = 15.0


class Admission:
    """ASGI middleware: the body limit and the cap on requests served at once."""

    def __init__(self, app: ASGIApp, body_limit: int = MAX_BODY,
                 max_active: int = MAX_ACTIVE) -> None:
        self.app = app
        self.body_limit = body_limit
        self.max_active = max_active
        self._active: asyncio.Semaphore | None = None  # made on the server's loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.body_limit:
            await error_response(413, "body_too_large",
                                 too_large_message(self.body_limit))(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_limit:
                    raise BodyTooLarge(self.body_limit)
            return message

        if is_event_stream(scope["path"]):
            await self.app(scope, limited, send)
            return
        if self._active is None:
            self._active = asyncio.Semaphore(self.max_active)
        try:
            await asyncio.wait_for(self._active.acquire(), WAIT_S)
        except asyncio.TimeoutError:
            await error_response(503, "busy", "the master is serving as many requests as it "
                                 "allows; try again in a moment")(scope, receive, send)
            return
        try:
            await self.app(scope, limited, send)
        finally:
            self._active.release()
