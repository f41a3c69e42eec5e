"""How the engine takes in what its peers sent: frames parsed off the transport's streams.

:class:`Incoming` is the incoming half of :class:`~shoal.spmd.engine.Engine` (a base
class).  :meth:`Incoming._read` takes a peer's stream apart: a small frame whole (one call
into the transport: ``take_message``), else its header, then its body into its place: the
matching posted receive's buffer when there is one and it fits (no intermediate copy), a
new buffer otherwise; a large frame behind a blocking receive's message is left in the
stream (parked) for the next receive to take straight into its own buffer.  A whole frame
goes to :meth:`Incoming._on_frame`: an acknowledgement, a rendezvous offer (RTS) or its
PUT and PUT_DONE, or a message for the :class:`~shoal.spmd.matching.Matcher`.  The engine
keeps the state and completes the receives; the attributes below are its.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoal.errors import CommunicationError
from shoal.spmd.inflight import OutgoingSend, Reading
from shoal.spmd.matching import Matcher, Message, PostedReceive
from shoal.wire.header import (
    ACK,
    DATA,
    FAILED,
    HEADER,
    HEADER_SIZE,
    PUT,
    PUT_DONE,
    RTS,
    SYNC,
    parse_rts,
)

if TYPE_CHECKING:
    from shoal.transport.base import Endpoint

# Messages up to this size are written with one copy into the stream when
# they fit, and read with one copy out of it.
SMALL = 16 * 1024


class Incoming:
    """The engine's reading of its streams (see the module docstring)."""

    rank: int
    endpoint: Endpoint | None
    matcher: Matcher
    _reading: list[Reading | None]
    _awaiting_ack: dict[int, OutgoingSend]
    _parking: int
    _puts: dict[tuple[int, int], bool | None]

    def _complete(self, receive: PostedReceive, message: Message) -> None:
        raise NotImplementedError

    def _serve_put(self, frame: Message) -> None:
        raise NotImplementedError

    def _acknowledge(self, message: Message) -> None:
        raise NotImplementedError

    def _read(self, src: int) -> bool:
        """Take what has arrived from ``src``; True if a message or ack completed."""
        endpoint = self.endpoint
        assert endpoint is not None
        progressed = False
        while True:
            reading = self._reading[src]
            if reading is None:
                frame = endpoint.take_message(src, SMALL)
                if frame is not None:
                    self._on_frame(frame)
                    progressed = True
                    continue
                if self._parking == src and not self._wanted_from(src):
                    # A large frame (or a part of a small one) is next: park it for the
                    # blocking receive that follows (see __init__).
                    return progressed
            if reading is None:
                available = endpoint.readable(src)
                if available < HEADER_SIZE:
                    return progressed
                kind, flags, nparts, _, tag, ctx, seq, stamp, length = HEADER.unpack(
                    endpoint.read_bytes(src, HEADER_SIZE))
                available -= HEADER_SIZE
                if length <= available and length <= SMALL:
                    body = endpoint.read_bytes(src, length) if length else b""
                    self._on_frame(Message(src, tag, ctx, flags, nparts, seq, stamp, length,
                                           body, kind))
                    progressed = True
                    continue
                message = Message(src, tag, ctx, flags, nparts, seq, stamp, length)
                if kind == DATA:
                    reading = self._start_body(message)
                else:  # a control frame whose body is still on its way
                    reading = Reading(message, memoryview(bytearray(length)), None)
                    reading.kind = kind
                self._reading[src] = reading
            # The body: what has arrived, straight into its place where the transport can.
            got = endpoint.receive_into(src, reading.target, reading.got,
                                        reading.message.length)
            if got == reading.got:
                return progressed
            reading.got = got
            if reading.got < reading.message.length:
                return progressed
            self._reading[src] = None
            self._finish_body(reading)
            progressed = True

    def _wanted_from(self, src: int) -> bool:
        """Whether a posted receive may match a message from ``src``, or a send of ours
        awaits an acknowledgement from it: then what ``src`` sent must be read on."""
        for receives in self.matcher.posted.values():
            for receive in receives:
                if receive.source == src or receive.source < 0:
                    return True
        return any(o.dst == src for o in self._awaiting_ack.values())

    def _on_frame(self, frame: Message) -> None:
        """A whole frame with a small body: an ack, a message, or a rendezvous offer."""
        kind = frame.kind
        if kind == ACK:
            waiting = self._awaiting_ack.pop(frame.seq, None)
            if waiting is not None:
                waiting.done = True
                waiting.hold = None
            return
        if kind == PUT:
            self._serve_put(frame)
            return
        if kind == PUT_DONE:
            if (frame.source, frame.seq) in self._puts:
                self._puts[frame.source, frame.seq] = not frame.flags & FAILED
            return
        if kind == RTS:
            pid, frame.length, pieces = parse_rts(frame.body, frame.nparts)
            frame.body = None
            frame.remote = (pid, pieces)
            frame.kind = DATA
        elif kind != DATA:
            raise CommunicationError(
                f"rank {self.rank} got a frame of unknown kind {kind} from rank "
                f"{frame.source}; are both ends the same shoal version?")
        receive = self.matcher.arrive(frame)
        if receive is not None:
            self._complete(receive, frame)

    def _start_body(self, message: Message) -> Reading:
        """Choose where a large body goes: the matching receive's buffer, or a new one."""
        receive = None
        posted = self.matcher.posted.get(message.ctx)
        if posted:
            for index, candidate in enumerate(posted):
                if candidate.matches(message):
                    receive = posted.pop(index)
                    break
        if (receive is not None and receive.buffer is not None
                and message.length <= receive.buffer.nbytes):
            return Reading(message, receive.buffer, receive)
        return Reading(message, memoryview(bytearray(message.length)), receive)

    def _finish_body(self, reading: Reading) -> None:
        message = reading.message
        if reading.kind != DATA:
            message.kind = reading.kind
            message.body = bytes(reading.target)
            self._on_frame(message)
            return
        receive = reading.receive
        if receive is not None and reading.target is receive.buffer:
            message.body = None
            receive.message = message
            if message.flags & SYNC:
                self._acknowledge(message)
            receive.done = True
            return
        message.body = reading.target.obj  # the bytearray itself
        if receive is not None:
            self._complete(receive, message)
            return
        late = self.matcher.arrive(message)
        if late is not None:
            self._complete(late, message)
