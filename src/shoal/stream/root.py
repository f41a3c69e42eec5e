"""The root role: ``shoal stream --server URL`` runs its stream on a ``shoal stream-server``.

The root keeps the input and the output; the server keeps the coordinator and its
volunteers.  The server pulls values (``want``), the root answers (``values``), outcomes
come back in the order to print (messages listed in :mod:`shoal.stream.protocol`).  When
the server was started with ``--secret``, the root must present it: whoever is root
chooses the code every volunteer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from shoal.stream import protocol
from shoal.stream.coordinator import POLICIES, Coordinator, Job
from shoal.stream.errors import ProtocolError, RootRefused, StreamError
from shoal.stream.hub import Hub
from shoal.stream.ledger import Outcome
from shoal.stream.tls import client_context, unreachable
from shoal.stream.values import BadInput
from shoal.stream.wslink import WebSocketLink, peer


# -- the server's side ---------------------------------------------------------------------
class RootSource:
    """Values pulled from the root: asks for what the coordinator lacks, and a little more
    (twice that, and 8), so that the next values are here before a volunteer asks: a round
    trip to the root per item would be most of a quick item's cost.  Still bounded: at most
    three times what the coordinator asked for at once is waiting here."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self.ended = False
        self._values: deque[Any] = deque()
        self._asked = 0
        self._end = False
        self._wakeup: Callable[[], None] | None = None

    def start(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup

    def take(self, count: int) -> list[Any]:
        out = [self._values.popleft() for _ in range(min(count, len(self._values)))]
        if self._end:
            self.ended = not self._values
        else:
            lacking = count - len(out)
            coming = len(self._values) + self._asked
            # Below a low mark, ask up to a high one: one "want" for several values.
            missing = lacking + 2 * count + 8 - coming
            if coming < lacking + count + 4:
                self._asked += missing
                self.link.send({"type": "want", "count": missing})
        return out

    def arrived(self, values: list[Any], end: bool) -> None:
        self._asked = max(0, self._asked - len(values))
        self._values.extend(values)
        self._end = self._end or end
        if self._wakeup is not None:
            self._wakeup()

    def close(self) -> None:
        pass


class RootSink:
    """Outcomes sent to the root, one message per burst, and at most one per GATHER seconds:
    results of quick items then share a message (each message is a wakeup of the root and
    a system call here, most of what a quick item costs through a stream-server), while a
    slow stream's results still go at once."""

    GATHER = 0.002

    def __init__(self, link: Any) -> None:
        self.link = link
        self._pending: list[dict[str, Any]] = []
        self._last_sent = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, outcome: Outcome) -> None:
        self._pending.append(protocol.outcome_to_json(outcome))

    def emit_run(self, start: int, values: list[Any]) -> None:
        """Ok results of consecutive items, as one entry."""
        self._pending.append({"start": start, "values": values})

    def fail(self, outcome: Outcome, policy: str) -> None:
        self._pending.append(protocol.outcome_to_json(outcome))

    def flush(self) -> None:
        if not self._pending or self._timer is not None:
            return   # nothing, or a send is due soon
        loop = asyncio.get_running_loop()
        wait = self._last_sent + self.GATHER - loop.time()
        if wait <= 0:
            self.flush_now()
        else:
            self._timer = loop.call_later(wait, self.flush_now)

    def flush_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self.link.send({"type": "outcomes", "outcomes": self._pending})
            self._pending = []
            self._last_sent = asyncio.get_running_loop().time()


def _job(message: dict[str, Any], *, heartbeat: float, window: int,
         max_losses: int, degree: int) -> Job:
    module, function = message.get("module"), message.get("function")
    batch, on_error = message.get("batch", 1), message.get("on_error", "stop")
    if (not isinstance(module, dict) or not isinstance(module.get("name"), str)
            or not isinstance(module.get("source"), str) or not isinstance(function, str)):
        raise ProtocolError("stream: needs module {name, source} and a function name")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ProtocolError("stream: batch must be a whole number >= 1")
    if on_error not in POLICIES:
        raise ProtocolError(f"stream: on_error must be one of {', '.join(POLICIES)}")
    return Job(module["name"], module["source"], function, batch=batch, heartbeat=heartbeat,
               ordered=bool(message.get("ordered", True)), on_error=on_error, window=window,
               max_losses=max_losses, degree=degree)


def _within_limit(value: Any) -> Any:
    """A value from the root, or a failed item in its place when it is over MAX_VALUE (the
    root's own reader refuses those: this is a root that does not)."""
    size = protocol.value_size(value)
    if size <= protocol.MAX_VALUE:
        return value
    return BadInput("...", "BadInput: " + protocol.too_large("a value from the root", size))


async def serve_root(websocket: Any, hub: Hub, *, heartbeat: float = 30.0,
                     window: int = 1024, max_losses: int = 3, degree: int = 10) -> None:
    """Run one root's stream on this server's volunteers (the /root WebSocket)."""
    link = WebSocketLink(websocket)
    writer = asyncio.ensure_future(link.write_loop())
    coordinator: Coordinator | None = None
    try:
        first = protocol.decode(await websocket.receive_text())
        if first.get("type") != "stream":
            raise ProtocolError("the root's first message must be a stream")
        refused = hub.root_check.check(first.get("secret"), peer(websocket))
        if refused is not None:
            raise ProtocolError(refused)
        if hub.busy():
            raise ProtocolError("this stream-server is running another stream; try later")
        job = _job(first, heartbeat=heartbeat, window=window, max_losses=max_losses,
                   degree=degree)
        source = RootSource(link)
        sink = RootSink(link)
        coordinator = Coordinator(job, source, sink)
        hub.begin(coordinator)
        link.send({"type": "accepted", "url": hub.url})
        run = asyncio.ensure_future(coordinator.run())

        async def read() -> None:
            while True:
                text = await websocket.receive_text()
                message = protocol.decode(text)
                if message.get("type") != "values" or not isinstance(message.get("values"),
                                                                     list):
                    raise ProtocolError("the root may only send values")
                values = message["values"]
                if len(text) > protocol.MAX_VALUE:   # one of them may be over the limit
                    values = [_within_limit(value) for value in values]
                source.arrived(values, bool(message.get("end")))

        reader = asyncio.ensure_future(read())
        await asyncio.wait([run, reader], return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            coordinator.finish(1)     # the root left: nobody would read the results
            with contextlib.suppress(BaseException):
                reader.exception()    # retrieved, so asyncio does not log it
        status = await run
        reader.cancel()
        sink.flush_now()   # every outcome before "done"
        link.send({"type": "done", "status": status})
    except ProtocolError as exc:
        link.send(protocol.error(str(exc)))
    except Exception:
        if coordinator is not None:
            coordinator.finish(1)
    finally:
        if coordinator is not None and hub.coordinator is coordinator:
            hub.end()
        link.close()
        await writer


# -- the root's side -----------------------------------------------------------------------
async def run_root(url: str, *, module_name: str, source_text: str, function: str,
                   batch: int, ordered: bool, on_error: str, secret: str | None,
                   values: Any, sink: Any, announce: Callable[[str], None],
                   cafile: str | None = None) -> int:
    """Send our stream to the server at ``url``; print its outcomes; its exit status."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    root_url = _root_url(url)
    try:
        connection = await connect(root_url, max_size=protocol.MAX_MESSAGE, open_timeout=10,
                                   compression=None, proxy=None,
                                   ssl=client_context(root_url, cafile))
    except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise unreachable("the stream-server", root_url, exc) from None
    owed = 0
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def feed() -> None:
        nonlocal owed
        if owed <= 0:
            return
        taken = values.take(owed)
        owed -= len(taken)
        if taken or values.ended:
            outbox.put_nowait({"type": "values", "values": taken, "end": values.ended})

    async def write() -> None:
        while True:
            for text in protocol.encode_fitting(await outbox.get()):
                await connection.send(text)

    values.start(feed)
    writer = asyncio.ensure_future(write())
    try:
        await connection.send(protocol.encode({
            "type": "stream", "secret": secret, "module": {"name": module_name,
                                                            "source": source_text},
            "function": function, "batch": batch, "ordered": ordered, "on_error": on_error}))
        async for text in connection:
            message = protocol.decode(text)
            kind = message["type"]
            if kind == "accepted":
                announce(message.get("url") or url)
            elif kind == "want":
                owed += int(message["count"])
                feed()
            elif kind == "outcomes":
                emit_run = getattr(sink, "emit_run", None)
                for raw in message["outcomes"]:
                    if "start" in raw:   # a run of ok results
                        if emit_run is not None:
                            emit_run(int(raw["start"]), raw["values"])
                        else:
                            for k, value in enumerate(raw["values"]):
                                sink.emit(Outcome(int(raw["start"]) + k, True, value=value))
                        continue
                    outcome = Outcome(raw["id"], raw["ok"], value=raw.get("value"),
                                      error=raw.get("error", ""),
                                      traceback=raw.get("traceback", ""), item=raw.get("item"))
                    if outcome.ok:
                        sink.emit(outcome)
                    else:
                        sink.fail(outcome, on_error)
                sink.flush()
            elif kind == "done":
                return int(message["status"])
            elif kind == "error":
                raise RootRefused(f"the stream-server refused: {message.get('message')}")
        raise StreamError("the stream-server closed the connection before the end")
    except ConnectionClosed:
        raise StreamError("the stream-server closed the connection before the end") from None
    finally:
        writer.cancel()
        values.close()
        with contextlib.suppress(Exception):
            await connection.close()


def _root_url(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    elif base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif not base.startswith(("ws://", "wss://")):
        base = "ws://" + base
    for suffix in ("/root", "/volunteer"):
        base = base.removesuffix(suffix)
    return base + "/root"


def volunteer_url(url: str) -> str:
    return _root_url(url).removesuffix("/root") + "/volunteer"
