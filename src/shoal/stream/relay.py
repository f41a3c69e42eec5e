"""Relay volunteers (``shoal volunteer URL --relay``): Pando's fat tree.

A relay is a volunteer to its parent and a coordinator to its children: it serves
``/volunteer`` itself, computes with ``workers`` local processes of its own, and a parent
that has ``--degree`` direct volunteers sends newcomers to it.  Relays join as any
volunteer does, so a relay arriving when the root is full is sent to a relay in turn:
the tree grows deeper by itself.  Its capacity toward the parent is what its children and
its processes may hold, told the parent whenever that changes.  Items lent to it are lent on
by its own :class:`~shoal.stream.coordinator.Coordinator` (unordered: the root keeps the
order), so re-lending works at each level: a child that leaves has its items lent to its
siblings by the relay, a relay that leaves has all of its items lent again by its parent.

A relay serves one session per parent connection: when its stream ends, or its parent goes
away, it tells its children to stop (they go back to the root, which places them again)
and joins the root again itself, for the next stream on a stream-server or a new place in
the tree; it leaves when the root no longer answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.stream import protocol
from shoal.stream.coordinator import Coordinator, Job, Member
from shoal.stream.errors import StreamError
from shoal.stream.hub import Hub
from shoal.stream.ledger import Outcome
from shoal.stream.root import volunteer_url
from shoal.stream.tls import ServerCertificate, client_context, network_warning, unreachable

RETRIES = 5   # failed connections in a row before a relay that has served gives up


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

    def arrived(self, message: dict[str, Any]) -> int:
        if "start" in message:
            start, values = int(message["start"]), message["values"]
            self._items.extend(zip(range(start, start + len(values)), values, strict=True))
            count = len(values)
        else:
            self._items.extend((int(item["id"]), item["value"]) for item in message["items"])
            count = len(message["items"])
        if self._wakeup is not None:
            self._wakeup()
        return count

    def close(self) -> None:
        pass


class ToParent:
    """The relay's sink: outcomes go up as the results of the parent's items, runs of
    consecutive parent ids as one ``results`` message."""

    def __init__(self, items: ParentItems, send: Callable[[dict[str, Any]], None]) -> None:
        self.items = items
        self.send = send
        self._start = -1
        self._run: list[Any] = []

    def emit(self, outcome: Outcome) -> None:
        self.emit_run(outcome.id, [outcome.value])

    def emit_run(self, start: int, values: list[Any]) -> None:
        pop = self.items.parent_ids.pop
        for local_id, value in enumerate(values, start):
            parent_id = pop(local_id)
            if self._run and parent_id == self._start + len(self._run):
                self._run.append(value)
                continue
            self._send_run()
            self._start, self._run = parent_id, [value]

    def fail(self, outcome: Outcome, policy: str) -> None:
        self._send_run()
        parent_id = self.items.parent_ids.pop(outcome.id)
        self.send(protocol.result_error(parent_id, outcome.error, outcome.traceback))

    def _send_run(self) -> None:
        if self._run:
            self.send(protocol.results(self._start, self._run, 0.0))
            self._run = []

    def flush(self) -> None:
        self._send_run()


class _Session:
    """One connection to a parent: join (following redirects), relay, until it ends."""

    def __init__(self, hub: Hub, *, name: str, secret: str | None, degree: int,
                 workers: int, cafile: str | None, say: Callable[[str], None]) -> None:
        self.hub, self.name, self.secret, self.degree = hub, name, secret, degree
        self.workers, self.cafile, self.say = workers, cafile, say
        self.relayed = 0
        self.joined = False

    async def run(self, target: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

        while True:   # a redirect sends us on to a relay
            try:
                parent = await connect(target, open_timeout=10, max_size=protocol.MAX_MESSAGE,
                                       compression=None, proxy=None,
                                       ssl=client_context(target, self.cafile))
            except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
                raise unreachable("the coordinator", target, exc) from None
            try:
                redirect = await self._serve(parent)
            except ConnectionClosed:
                redirect = None   # the parent is gone; our children see us go
            finally:
                with contextlib.suppress(Exception):
                    await parent.close()
            if redirect is None:
                return
            self.say(f"redirected to the relay at {redirect}")
            target = volunteer_url(redirect)

    async def _serve(self, parent: Any) -> str | None:
        """Relay on ``parent`` until it stops or goes; a relay's URL when redirected."""
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        send = outbox.put_nowait

        async def write() -> None:
            from websockets.exceptions import ConnectionClosed

            with contextlib.suppress(ConnectionClosed):
                while True:
                    for text in protocol.encode_fitting(await outbox.get()):
                        await parent.send(text)

        writer = asyncio.ensure_future(write())
        coordinator: Coordinator | None = None
        running: asyncio.Future[int] | None = None
        pool: Any = None
        folder = tempfile.TemporaryDirectory(prefix="shoal-relay-")
        items = ParentItems()
        stopped = False
        try:
            send(protocol.hello("relay", self.name, 0, self.secret, relay_url=self.hub.url,
                                redirects=True, runs=True))
            async for text in parent:
                message = protocol.decode(text)
                kind = message["type"]
                if kind == "items":
                    self.relayed += items.arrived(message)
                elif kind == "ping":
                    send(protocol.PONG)
                elif kind == "welcome":
                    coordinator, pool = await self._begin(message, items, send, folder.name)
                    running = asyncio.ensure_future(coordinator.run())
                    self.joined = True
                    self.say(f"joined as {message['volunteer_id']}")
                elif kind == "redirect":
                    return str(message.get("url"))
                elif kind == "error":
                    raise StreamError(f"the coordinator refused us: {message.get('message')}")
                elif kind == "stop":
                    stopped = True
                    break
            return None
        finally:
            if coordinator is not None:
                # The stream ended: our children are told so.  Our parent went away: their
                # connections just close, and they come back (Python volunteers to the
                # root, browser tabs to us, to wait for our next session).
                coordinator.finish(0, tell=stopped)
            if running is not None:
                await running
            if pool is not None:
                await asyncio.get_running_loop().run_in_executor(None, pool.close)
            self.hub.end()
            await asyncio.sleep(0.05)   # let the last results and stops go out
            writer.cancel()
            folder.cleanup()

    async def _begin(self, welcome: dict[str, Any], items: ParentItems,
                     send: Callable[[dict[str, Any]], None], folder: str) -> tuple[Any, Any]:
        """A stream starts: our coordinator, our children welcomed, our processes started."""
        from shoal.stream.local import LocalPool

        module = welcome["module"]
        batch = int(welcome["batch"])
        job = Job(module["name"], module["source"], welcome["function"], batch=batch,
                  heartbeat=float(welcome["heartbeat"]), ordered=False, on_error="report",
                  window=1 << 20, degree=self.degree)
        coordinator = Coordinator(job, items, ToParent(items, send))
        told = [-1]

        def capacity_changed(event: str, member: Member) -> None:
            capacity = sum(m.capacity for m in coordinator.members.values())
            if capacity != told[0]:
                told[0] = capacity
                send(protocol.capacity(capacity))

        coordinator.add_listener(capacity_changed)
        self.hub.begin(coordinator)
        pool = None
        if self.workers:
            # The module's source, as a file our processes import (as a volunteer would).
            path = Path(folder) / f"{module['name']}.py"
            path.write_text(module["source"])
            pool = LocalPool(coordinator, str(path), capacity=batch)
            await pool.start(self.workers)
        return coordinator, pool


async def run_relay(url: str, *, bind: str = "0.0.0.0", port: int = 0, degree: int = 10,
                    name: str = "", secret: str | None = None, cafile: str | None = None,
                    certificate: ServerCertificate | None = None, workers: int = 1,
                    say: Callable[[str], None] = lambda text: None) -> int:
    """Relay for the coordinator at ``url`` (and compute, with ``workers`` local processes)
    until it no longer answers; the items relayed.  The parent link trusts ``cafile``
    (else the system's CAs); children join over TLS with ``certificate``."""
    from shoal.stream.server import serve

    origin = volunteer_url(url)
    client_context(origin, cafile)   # a bad --cafile is one line before anything starts
    warning = network_warning("shoal volunteer --relay", bind, secret=bool(secret),
                              secret_option="--secret", certificate=certificate)
    if warning:
        say(warning.removeprefix("shoal volunteer --relay: "))
    hub = Hub(volunteer_secret=secret)   # its children present the same secret
    server = await serve(hub, bind, port, certificate=certificate)
    say(f"relaying; children join at {hub.url}")
    session = _Session(hub, name=name or f"relay {socket.gethostname()} pid {os.getpid()}",
                       secret=secret, degree=degree, workers=workers, cafile=cafile, say=say)
    failures = 0
    try:
        while True:
            try:
                await session.run(origin)
                failures = 0
            except StreamError:
                failures += 1
                if not session.joined or failures >= RETRIES:
                    if session.joined:
                        break   # the root is gone: its streams are over
                    raise
            await asyncio.sleep(0.2)   # then join the root again: the next stream, or a new place
    finally:
        if hub.coordinator is not None:
            hub.coordinator.finish(0)
        await server.stop()
    return session.relayed
