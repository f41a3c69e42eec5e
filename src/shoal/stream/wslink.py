"""The coordinator's end of a WebSocket (a volunteer's, or a root's on a stream-server).

Used by the web server (:mod:`shoal.stream.server`) and the root role
(:mod:`shoal.stream.root`); it depends on neither, so they do not import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from shoal.stream import protocol

_CLOSE = None


class WebSocketLink:
    """The coordinator's end of one volunteer's WebSocket; sends never block."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        if not self.closed:
            for text in protocol.encode_fitting(message):
                self._outbox.put_nowait(text)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._outbox.put_nowait(_CLOSE)

    async def write_loop(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                text = await self._outbox.get()
                if text is _CLOSE:
                    break
                await self.websocket.send_text(text)
        with contextlib.suppress(Exception):
            await self.websocket.close()


def peer(websocket: Any) -> str:
    """The address a connection comes from (what secrets are rate limited by)."""
    client = getattr(websocket, "client", None)
    return str(client.host) if client is not None and client.host else "unknown"
