"""Relay volunteers (``shoal volunteer URL --relay``): Pando's fat tree.

A relay is a volunteer to its parent and a coordinator to its children: it serves
``/volunteer`` itself, and the parent sends it newcomers once the parent has ``--degree``
direct volunteers.  Its capacity toward the parent is what its children may hold (it
computes nothing itself), and it tells the parent whenever that changes.  Items lent to it
are lent on to its children by its own :class:`~shoal.stream.coordinator.Coordinator`
(unordered: the parent keeps the order), so re-lending works at each level: a child that
leaves has its items lent to its siblings by the relay, a relay that leaves has all of its
items lent again by its parent.  A relay always joins the coordinator it is given
directly (it does not follow redirects): deeper trees are built by giving a relay another
relay's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from shoal.stream import protocol
from shoal.stream.coordinator import Coordinator, Job, Member
from shoal.stream.errors import StreamError
from shoal.stream.hub import Hub
from shoal.stream.ledger import Outcome
from shoal.stream.root import volunteer_url
from shoal.stream.tls import ServerCertificate, client_context, network_warning, unreachable


class ParentItems:
    """The relay's source: the items its parent lent it, with the parent's ids."""

    ended = False   # until the parent says stop

    def __init__(self) -> None:
        self._items: deque[tuple[int, Any]] = deque()
        self.parent_ids: dict[int, int] = {}    # relay's id -> parent's id
        self._next_local = 0
        self._wakeup: Callable[[], None] | None = None

    def start(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup

    def take(self, count: int) -> list[Any]:
        out: list[Any] = []
        while self._items and len(out) < count:
            parent_id, value = self._items.popleft()
            # The relay's coordinator numbers what it takes from 0, in this order.
            self.parent_ids[self._next_local] = parent_id
            self._next_local += 1
            out.append(value)
        return out

    def arrived(self, items: list[dict[str, Any]]) -> None:
        self._items.extend((int(item["id"]), item["value"]) for item in items)
        if self._wakeup is not None:
            self._wakeup()

    def close(self) -> None:
        pass


class ToParent:
    """The relay's sink: each outcome goes up as the result of the parent's item."""

    def __init__(self, items: ParentItems, send: Callable[[dict[str, Any]], None]) -> None:
        self.items = items
        self.send = send

    def emit(self, outcome: Outcome) -> None:
        parent_id = self.items.parent_ids.pop(outcome.id)
        self.send(protocol.result_ok(parent_id, outcome.value, 0.0))

    def fail(self, outcome: Outcome, policy: str) -> None:
        parent_id = self.items.parent_ids.pop(outcome.id)
        self.send(protocol.result_error(parent_id, outcome.error, outcome.traceback))

    def flush(self) -> None:
        pass


async def run_relay(url: str, *, bind: str = "0.0.0.0", port: int = 0, degree: int = 10,
                    name: str = "", secret: str | None = None, cafile: str | None = None,
                    certificate: ServerCertificate | None = None,
                    say: Callable[[str], None] = lambda text: None) -> int:
    """Relay for the coordinator at ``url`` until it stops; the items relayed.  The parent
    link trusts ``cafile`` (else the system's CAs); children join over TLS with
    ``certificate``."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    from shoal.stream.server import serve

    target = volunteer_url(url)
    trusted = client_context(target, cafile)
    warning = network_warning("shoal volunteer --relay", bind, secret=bool(secret),
                              secret_option="--secret", certificate=certificate)
    if warning:
        say(warning.removeprefix("shoal volunteer --relay: "))
    hub = Hub(volunteer_secret=secret)   # its children present the same secret
    server = await serve(hub, bind, port, certificate=certificate)
    say(f"relaying; children join at {hub.url}")
    try:
        parent = await connect(target, open_timeout=10, max_size=protocol.MAX_MESSAGE,
                               compression=None, proxy=None, ssl=trusted)
    except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
        await server.stop()
        raise unreachable("the coordinator", target, exc) from None
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    send = outbox.put_nowait

    async def write() -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                for text in protocol.encode_fitting(await outbox.get()):
                    await parent.send(text)

    writer = asyncio.ensure_future(write())
    coordinator: Coordinator | None = None
    items = ParentItems()
    relayed = 0
    running: asyncio.Future[int] | None = None
    try:
        send(protocol.hello("relay", name or f"relay {socket.gethostname()} pid {os.getpid()}",
                            0, secret, relay_url=hub.url, redirects=False))
        async for text in parent:
            message = protocol.decode(text)
            kind = message["type"]
            if kind == "welcome":
                job = Job(message["module"]["name"], message["module"]["source"],
                          message["function"], batch=int(message["batch"]),
                          heartbeat=float(message["heartbeat"]), ordered=False,
                          on_error="report", window=1 << 20, degree=degree)
                coordinator = Coordinator(job, items, ToParent(items, send))

                def children_changed(event: str, member: Member,
                                     coordinator: Coordinator = coordinator) -> None:
                    send(protocol.capacity(sum(m.capacity for m in
                                               coordinator.members.values())))

                coordinator.add_listener(children_changed)
                hub.begin(coordinator)
                running = asyncio.ensure_future(coordinator.run())
                say(f"joined as {message['volunteer_id']}")
            elif kind == "items":
                relayed += len(message["items"])
                items.arrived(message["items"])
            elif kind == "ping":
                send(protocol.PONG)
            elif kind == "error":
                raise StreamError(f"the coordinator refused us: {message.get('message')}")
            elif kind == "stop":
                break
    except ConnectionClosed:
        pass   # the parent is gone: its streams are over; our children see us go
    finally:
        if coordinator is not None:
            coordinator.finish(0)
        if running is not None:
            await running
        await asyncio.sleep(0.05)   # let the stops reach the children
        writer.cancel()
        with contextlib.suppress(Exception):
            await parent.close()
        await server.stop()
    return relayed
