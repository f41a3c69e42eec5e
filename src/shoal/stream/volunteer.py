"""``shoal volunteer URL``: lend this machine to a coordinator over WebSocket.

The module's source comes in the welcome and runs here (so what it imports must be
installed here).  Computation runs in the main thread; the channel's reader thread answers
the coordinator's pings meanwhile.  After a stream ends the volunteer looks for the next
one at the same URL (a stream-server serves many) and exits when nobody answers any more.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from shoal.stream import protocol
from shoal.stream.errors import ProtocolError, StreamError
from shoal.stream.root import volunteer_url
from shoal.stream.tls import client_context, unreachable
from shoal.stream.worker import Redirected, Volunteer


class WebSocketChannel:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def recv(self) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            text = self.connection.recv()
        except (ConnectionClosed, OSError, EOFError):
            return None
        return protocol.decode(text)

    def send(self, message: dict[str, Any]) -> None:
        self.send_many([message])

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        from websockets.exceptions import ConnectionClosed

        texts = [text for message in messages for text in protocol.encode_fitting(message)]
        try:
            with self._lock:
                for text in texts:
                    self.connection.send(text)
        except ConnectionClosed as exc:
            raise OSError("the coordinator closed the connection") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


RETRIES = 5   # failed tries in a row at a relay or the origin before giving up


def serve(url: str, *, capacity: int = 1, name: str = "", secret: str | None = None,
          once: bool = False, kind: str = "machine", cafile: str | None = None,
          say: Callable[[str], None] = lambda text: None) -> int:
    """Volunteer for the streams at ``url``; the number of items computed.  A wss:// (or
    https://) coordinator's certificate is checked against the system's CAs, or
    ``cafile``'s certificates.

    The coordinator at ``url`` may send us to one of its relays (Pando's fat tree); when a
    connection ends, whether its stream ended or the relay we were sent to went away, we
    go back to ``url``, which places us again (or starts the next stream, on a
    stream-server), and leave once it no longer answers."""
    from websockets.exceptions import InvalidHandshake, InvalidURI
    from websockets.sync.client import connect

    origin = target = volunteer_url(url)
    name = name or f"{socket.gethostname()} pid {os.getpid()}"
    done = 0
    joined = False
    failures = 0
    while True:
        try:
            connection = connect(target, open_timeout=10, max_size=protocol.MAX_MESSAGE,
                                 compression=None, proxy=None,
                                 ssl=client_context(target, cafile))
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            failures += 1
            if target != origin and failures < RETRIES:
                target = origin   # the relay we were sent to is gone: ask again
                time.sleep(0.1)
                continue
            if joined:
                return done   # the coordinator is gone: its streams are over
            raise unreachable("the coordinator", target, exc) from None
        channel = WebSocketChannel(connection)

        def said(event: str, message: dict[str, Any], target: str = target) -> None:
            if event == "waiting":
                say(f"connected to {target}; waiting for a stream")
            else:
                module = message.get("module") or {}
                say(f"joined the stream at {target} as {message.get('volunteer_id')}: "
                    f"{message.get('function')} from {module.get('name')}, "
                    f"{min(capacity, int(message.get('batch') or 1))} items at a time")

        volunteer = Volunteer(channel, kind=kind, name=name, capacity=capacity, secret=secret,
                              on_event=said)
        try:
            count = volunteer.run()
        except Redirected as redirect:
            say(f"redirected to the relay at {redirect.url}")
            target = volunteer_url(redirect.url)
            continue
        except ProtocolError as exc:
            if "before welcoming" in str(exc):
                failures += 1
                if target != origin and failures < RETRIES:
                    target = origin   # a relay that was leaving: ask the origin again
                    continue
                if joined and volunteer.done == 0:
                    return done   # reconnected to a coordinator that was shutting down
            raise StreamError(str(exc)) from None
        failures = 0
        joined = True
        done += count
        say(f"computed {count} items")
        if once:
            return done
        target = origin
        time.sleep(0.2)   # let a stream-server get ready for the next stream
