"""The coordinator: lends items to volunteers, collects results, prints them in order.

It couples the pure :class:`~shoal.stream.ledger.Ledger` to the world: a source of input
values, a sink for outcomes, and volunteers behind links (a pipe to a local process, a
WebSocket to another machine or a browser).  Everything runs on one asyncio loop; links
call :meth:`Coordinator.hello`, :meth:`Coordinator.receive` and :meth:`Coordinator.lost`,
and the coordinator answers through :meth:`Link.send`, which never blocks.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from shoal.stream import protocol
from shoal.stream.errors import ProtocolError
from shoal.stream.ledger import Ledger, Lent, Outcome, Run
from shoal.stream.pace import LendAhead
from shoal.stream.stats import VolunteerStats
from shoal.stream.values import BadInput

POLICIES = ("stop", "skip", "report")
# A local process is lent its next batch while it computes the current one (so it never
# waits a round trip for work): it holds at least this many batches, and more when its
# items are quick (shoal.stream.pace: what it computes in a few milliseconds).
PIPELINE = 2


class Link(Protocol):
    """One volunteer's connection, as the coordinator sees it."""

    def send(self, message: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class Source(Protocol):
    """Input values, read only when asked (see :mod:`shoal.stream.sources`)."""

    ended: bool   # True once every value has been taken

    def take(self, count: int) -> list[Any]:
        """Up to ``count`` values available now; when fewer, the source calls the wakeup
        it was given once more are there (or it ended)."""

    def start(self, wakeup: Any) -> None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where outcomes go, in the order to print them (see :mod:`shoal.stream.sinks`)."""

    def emit(self, outcome: Outcome) -> None: ...

    def fail(self, outcome: Outcome, policy: str) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class Job:
    """What every volunteer is told, and how the coordinator treats the stream."""

    module_name: str
    source: str
    function: str
    batch: int = 1
    heartbeat: float = 30.0
    ordered: bool = True
    on_error: str = "stop"
    window: int = 1024
    max_losses: int = 3
    degree: int = 0                # direct volunteers at most before redirecting (0: any)


@dataclass
class Member:
    id: str
    kind: str
    name: str
    capacity: int
    link: Link
    joined: float
    last_seen: float
    stats: VolunteerStats = field(default_factory=VolunteerStats)
    relay_url: str | None = None
    redirected: int = 0            # volunteers sent to this relay
    runs: bool = False             # takes items as a start and values (protocol.items_run)
    batch: int = 0                 # a local process's batch (0: not a local process)
    ahead: LendAhead | None = None   # a local process: how far ahead it is lent

    @property
    def refill_at(self) -> int:
        # A local process: once a batch, or a quarter of what it is lent ahead, is free (one
        # message then carries all its free slots).  Else once half its slots are free, so
        # each items message carries several items (with batch 1: every time).
        if self.batch:
            return max(self.batch, self.capacity // 4)
        return (self.capacity + 1) // 2

    def items_message(self, lent: Lent) -> dict[str, Any]:
        if self.runs and isinstance(lent.ids, range):
            return protocol.items_run(lent.ids.start, lent.values)
        return protocol.items(lent.pairs())


class Coordinator:
    def __init__(self, job: Job, source: Source, sink: Sink) -> None:
        if job.on_error not in POLICIES:
            raise ValueError(f"on_error must be one of {POLICIES}")
        self.job = job
        self.source = source
        self.sink = sink
        self.ledger = Ledger(window=job.window, max_losses=job.max_losses, ordered=job.ordered)
        self.members: dict[Link, Member] = {}
        self.started = time.monotonic()
        self.failures = 0
        self.status: int | None = None
        self._ids = itertools.count(1)
        self._done: asyncio.Event | None = None
        self._listeners: list[Any] = []   # called (event, member): join, leave, capacity
        self.departed: list[dict[str, Any]] = []

    # -- links call these -----------------------------------------------------------------
    def hello(self, link: Link, message: dict[str, Any]) -> Member | None:
        """A volunteer's first message; welcomes it (or refuses it and closes the link)."""
        try:
            kind, name, capacity = protocol.check_hello(message)
        except ProtocolError as exc:
            self._refuse(link, str(exc))
            return None
        if self.status is not None:
            link.send(protocol.STOP)   # too late for this stream: nothing wrong with it
            link.close()
            return None
        relay = self._relay_for(message)
        if relay is not None:
            relay.redirected += 1
            link.send(protocol.redirect(relay.relay_url or ""))
            link.close()
            return None
        now = time.monotonic()
        # A relay holds what its children may (leaves x batch), bounded by the window.
        limit = self.job.window if kind == "relay" else self.job.batch
        member = Member(f"v{next(self._ids)}", kind, name or kind, min(capacity, limit), link,
                        now, now, relay_url=message.get("relay_url") if kind == "relay"
                        else None, runs=message.get("runs") is True)
        # A relay passes the stream's batch on to its children; others compute their
        # capacity at a time (local processes: with one more batch queued, see PIPELINE).
        batch = self.job.batch if kind == "relay" else member.capacity
        if kind == "process":
            member.batch = batch
            member.capacity = PIPELINE * batch
            member.ahead = LendAhead(member.capacity)
        self.members[link] = member
        self.ledger.join(link, member.capacity)
        job = self.job
        link.send(protocol.welcome(member.id, job.module_name, job.source, job.function,
                                   batch, job.heartbeat))
        for listener in self._listeners:
            listener("join", member)
        self.pump()
        return member

    def receive(self, link: Link, messages: list[dict[str, Any]]) -> None:
        """Messages from a welcomed volunteer (all that arrived together)."""
        member = self.members.get(link)
        if member is None:
            return
        member.last_seen = now = time.monotonic()
        settled = 0
        try:
            for message in messages:
                kind = message["type"]
                if kind == "results":
                    start, values, cpu_time = protocol.check_results(message)
                    used = self.ledger.settle_run(link, start, values)
                    member.stats.results(used, cpu_time)
                    settled += used
                elif kind == "result":
                    settled += self._result(member, message)
                elif kind == "capacity" and member.kind == "relay":
                    member.capacity = min(protocol.check_capacity(message), self.job.window)
                    self.ledger.set_capacity(link, member.capacity)
                elif kind == "report":
                    cpu, transfer, _items, units, unit = protocol.check_report(message)
                    member.stats.report(cpu, transfer, units, unit)
                elif kind == "bye":
                    self.lost(link)
                    link.close()
                    return
                elif kind != "pong":
                    raise ProtocolError(f"unexpected message type {kind!r}")
        except ProtocolError as exc:
            self._refuse(link, str(exc))
            self.lost(link)
            return
        if member.ahead is not None and settled:
            self._pace(member, now, settled)
        # Lend first: the volunteer that answered waits for its next items, while printing
        # (or sending results on to a root) waits for nobody.  Then print, and lend what the
        # window's room, made by printing, lets in.
        self.pump()
        if self._release():
            self.pump()

    def lost(self, link: Link) -> None:
        """The link closed or went silent: its items are lent again."""
        member = self.members.pop(link, None)
        if member is None:
            return
        self.ledger.lose(link)
        self.departed.append({"id": member.id, "kind": member.kind, "name": member.name,
                              "items_done": member.stats.items_done})
        del self.departed[:-50]
        for listener in self._listeners:
            listener("leave", member)
        if self.status is None:
            self._release()   # items lost too often may have failed now
            self.pump()

    # -- the work -------------------------------------------------------------------------
    def _relay_for(self, message: dict[str, Any]) -> Member | None:
        """Pando's fat tree: with --degree direct volunteers, newcomers that can follow a
        redirect go to the relay with the fewest children (counting those sent there)."""
        # Local processes speak over pipes, not connections: they do not count.
        direct = sum(1 for m in self.members.values() if m.kind != "process")
        if not self.job.degree or direct < self.job.degree:
            return None
        if not message.get("redirects"):
            return None   # e.g. a browser page: it is taken directly
        relays = [m for m in self.members.values() if m.relay_url]
        if not relays:
            return None
        return min(relays, key=lambda m: m.capacity + m.redirected * self.job.batch)

    def _refuse(self, link: Link, reason: str) -> None:
        link.send(protocol.error(reason))
        link.close()

    def _result(self, member: Member, message: dict[str, Any]) -> int:
        item_id, ok = protocol.check_result(message)
        if ok:
            outcome = Outcome(item_id, True, value=message["value"])
        else:
            outcome = Outcome(item_id, False, error=message["error"],
                              traceback=str(message.get("traceback") or ""))
        if self.ledger.settle(member.link, outcome):
            member.stats.result(ok, float(message.get("cpu_time") or 0.0))
            return 1
        return 0

    def _pace(self, member: Member, now: float, settled: int) -> None:
        """A local process answered: lend it as far ahead as its items' pace asks."""
        ahead = member.ahead
        assert ahead is not None
        ahead.results(now, settled)
        processes = sum(1 for m in self.members.values() if m.ahead is not None)
        # At most three quarters of the window among the local processes: the rest is for
        # other volunteers, and for items that wait for an earlier one to be printed.
        depth = ahead.depth(3 * self.job.window // (4 * processes))
        if depth != member.capacity:
            member.capacity = depth
            self.ledger.set_capacity(member.link, depth)
            for listener in self._listeners:
                listener("capacity", member)

    def _release(self) -> bool:
        """Print what may be printed now; whether anything was."""
        released = self.ledger.release_runs()
        if not released:
            return False
        sink = self.sink
        emit_run = getattr(sink, "emit_run", None)   # a sink that takes runs whole
        for outcome in released:
            if isinstance(outcome, Run):
                if emit_run is not None:
                    emit_run(outcome.start, outcome.values)
                else:
                    for k, value in enumerate(outcome.values):
                        sink.emit(Outcome(outcome.start + k, True, value=value))
                continue
            self.failures += 1
            sink.fail(outcome, self.job.on_error)
            if self.job.on_error == "stop":
                sink.flush()
                self.finish(1)
                return True
        # At once: results that arrived together came as runs, in one message or one read
        # (a turn of the loop more per read, to gather several, costs more than it saves).
        self._flush()
        return True

    def _flush(self) -> None:
        self.sink.flush()
        if getattr(self.sink, "closed", False):
            self.finish(0)   # nobody reads the results any more (`| head`)

    def _admit(self) -> bool:
        """Read what volunteers have room for into the ledger; whether a bad input was read."""
        ledger = self.ledger
        bad_input = False
        while not ledger.input_done:
            need = ledger.demand()
            if need <= 0:
                break
            values = self.source.take(need)
            if BadInput not in map(type, values):   # checked in C: the common case
                ledger.admit_many(values)
                if self.source.ended:
                    ledger.end_input()
                break   # all it asked for (no demand left) or all there is for now
            for value in values:
                if isinstance(value, BadInput):
                    ledger.admit_failed(value.text, value.error)
                    bad_input = True
                else:
                    ledger.admit(value)
            if self.source.ended:
                ledger.end_input()
            if len(values) < need:
                break   # the source wakes us up when it has more
        return bad_input

    def pump(self) -> None:
        """Admit input for the room volunteers have, lend it, and see whether we are done."""
        if self.status is not None:
            return
        ledger = self.ledger
        # Inputs that are no values (BadInput) are settled as failed when read, and fill the
        # window without ever being lent: release them, which makes room, and read on.
        # Nothing else would wake us up, since no volunteer holds them.
        while self._admit():
            self._release()
            if self.status is not None:
                return
        if ledger.waiting_count:
            for link, member in self.members.items():
                messages = []
                while ledger.free_slots(link) >= member.refill_at:
                    lent = ledger.lend_batch(link)
                    if not lent:
                        break
                    messages.append(member.items_message(lent))
                if len(messages) > 1 and hasattr(link, "send_many"):
                    link.send_many(messages)   # a local process: one write for its batches
                else:
                    for message in messages:
                        link.send(message)
                if not ledger.waiting_count:
                    break
        if ledger.finished():
            self._release()
            if self.status is None:
                self.finish(0)

    # -- life -----------------------------------------------------------------------------
    def add_listener(self, listener: Any) -> None:
        self._listeners.append(listener)

    def finish(self, status: int, *, tell: bool = True) -> None:
        """The stream ends: every volunteer is told to stop and its link closed.  Without
        ``tell`` the links are only closed, as a connection that breaks: volunteers come
        back (a relay that lost its parent: its children find a new place, or wait)."""
        if self.status is not None:
            return
        self.status = status
        for link in list(self.members):
            if tell:
                link.send(protocol.STOP)
            link.close()
        if self._done is not None:
            self._done.set()

    def crash(self, exc: BaseException) -> None:
        """An unexpected error in the coordinator: say so with its traceback, stop (1)."""
        import traceback

        sys.stderr.write("shoal stream: internal error, the stream stops:\n"
                         + "".join(traceback.format_exception(type(exc), exc,
                                                              exc.__traceback__)))
        sys.stderr.flush()
        self.finish(1)

    async def _heartbeats(self) -> None:
        period = self.job.heartbeat
        last_tick = time.monotonic()
        while self.status is None:
            await asyncio.sleep(period)
            now = time.monotonic()
            if now - last_tick > 1.5 * period:
                # This loop itself was stalled (e.g. stdout blocked): the silence was ours.
                for member in self.members.values():
                    member.last_seen = now
            last_tick = now
            for link, member in list(self.members.items()):
                if not getattr(link, "heartbeats", True):
                    continue  # a local process: its pipe's end tells us exactly when it dies
                if now - member.last_seen > 2 * period:
                    link.send(protocol.error("no answer to two heartbeats"))
                    link.close()
                    self.lost(link)
                else:
                    link.send(protocol.PING)

    def lend_copies(self) -> None:
        """Stragglers: lend each overdue item to a volunteer that holds nothing as well (the
        first result wins), so that one slow or frozen volunteer does not hold the stream."""
        ledger = self.ledger
        overdue = ledger.overdue()
        if not overdue or self.status is not None:
            return
        for link, member in list(self.members.items()):
            if not overdue:
                return
            if ledger.holding(link) or not ledger.free_slots(link):
                continue   # only volunteers with empty hands
            lent = ledger.lend_copies(link, overdue)
            if lent:
                link.send(member.items_message(lent))
                overdue = overdue[len(lent):]

    async def _stragglers(self) -> None:
        while self.status is None:
            # Often enough to notice an item late by a few times the usual time (at least
            # MIN_OVERDUE), seldom enough to cost nothing.
            await asyncio.sleep(min(1.0, max(0.05, self.ledger.latency)))
            self.lend_copies()

    async def run(self) -> int:
        """Read, lend and print until the stream ends; the exit status."""
        self._done = asyncio.Event()
        self.source.start(self.pump)
        beats = asyncio.ensure_future(self._heartbeats())
        stragglers = asyncio.ensure_future(self._stragglers())
        try:
            self.pump()
            if self.status is None:
                await self._done.wait()
        finally:
            stragglers.cancel()
            beats.cancel()
            self.source.close()
            self.sink.flush()
        assert self.status is not None
        return self.status

    # -- monitoring -----------------------------------------------------------------------
    def close_interval(self, seconds: float) -> None:
        for member in self.members.values():
            member.stats.close_interval(seconds)

    def snapshot(self) -> dict[str, Any]:
        ledger = self.ledger
        now = time.monotonic()
        return {
            "stream": {
                "module": self.job.module_name, "function": self.job.function,
                "ordered": self.job.ordered, "batch": self.job.batch,
                "on_error": self.job.on_error, "elapsed": now - self.started,
                "read": ledger.admitted, "released": ledger.released,
                "outstanding": ledger.outstanding, "waiting": ledger.waiting_count,
                "buffered": ledger.buffered, "open": ledger.open_count,
                "peak_open": ledger.peak_open, "window": ledger.window,
                "relent": ledger.relent, "duplicates": ledger.duplicates,
                "lent_twice": ledger.copies, "won_by_second": ledger.copies_won,
                "usual_item_s": ledger.latency,
                "unsolicited": ledger.unsolicited,
                "failures": self.failures, "input_done": ledger.input_done,
                "status": self.status,
            },
            "volunteers": [
                {"id": m.id, "kind": m.kind, "name": m.name, "capacity": m.capacity,
             "relay_url": m.relay_url,
                 "holding": ledger.holding(m.link), "connected_s": now - m.joined,
                 **m.stats.as_json()}
                for m in self.members.values()
            ],
            "departed": list(self.departed),
        }
