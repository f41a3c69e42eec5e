"""The progress engine: moves message bytes between a rank and its peers.

One engine per process.  Sends are framed (see :mod:`shoal.wire.header`) and
written into the transport's streams; when a stream is full the rest waits in
a per-destination queue that every later call pushes further.  Incoming
streams are parsed incrementally; a complete message is handed to the
:class:`~shoal.spmd.matching.Matcher`.  A message whose header matches a
posted buffer receive is streamed straight into the user's buffer, with no
intermediate copy.

Every blocking call waits in :meth:`Engine.wait_until`, which keeps making
progress on *all* streams (so two ranks that send each other large messages at
once both finish) and spins briefly before sleeping on the transport.

Threads (MPI's ``THREAD_MULTIPLE``): every public method holds the engine's one
lock while it touches the engine's state (the matcher, the queues, the streams);
a thread that must wait releases it, so the others go on, and any thread's
progress completes any thread's requests.  While waiting, at most one thread
sleeps on the transport's doorbell; the others wait on a condition that the
threads making progress notify.  Small messages take one call into the
transport each way (``send_frame`` / ``take_message``: compiled for shared
memory), and spinning happens inside the transport with the GIL released
(``Endpoint.wait``), so a waiting thread costs the others nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from shoal.errors import CommunicationError
from shoal.spmd import singlecopy, spinning
from shoal.spmd.incoming import SMALL, Incoming
from shoal.spmd.inflight import SENT as _SENT
from shoal.spmd.inflight import OutgoingSend, Reading
from shoal.spmd.matching import Matcher, Message, PostedReceive
from shoal.spmd.spinning import Spin
from shoal.spmd.waiting import SPIN_QUANTUM_NS, Waiting, give_way
from shoal.transport.base import Endpoint
from shoal.wire.header import (
    ACK,
    DATA,
    HEADER,
    HEADER_SIZE,
    RTS,
    SYNC,
    WAITS,
    body_length,
    padded,
    part_table,
    rts_body,
)

_ONE_STEP_LOCAL = 1024 * 1024  # the most a compiled ring's one-step path takes
_ZEROS = bytes(8)
_NO_CHUNKS: list[memoryview] = []


class Engine(Incoming, Waiting):
    """One process's progress engine (see the module docstring); thread-safe."""

    def __init__(self, rank: int, size: int, endpoint: Endpoint | None) -> None:
        self.rank = rank
        self.size = size
        self.endpoint = endpoint
        self.matcher = Matcher()
        self._peers = [p for p in range(size) if p != rank]
        self._queues: list[deque[OutgoingSend]] = [deque() for _ in range(size)]
        self._busy: set[int] = set()  # destinations with queued sends
        self._reading: list[Reading | None] = [None] * size
        self._awaiting_ack: dict[int, OutgoingSend] = {}
        # A blocking receive into a buffer from this source is under way: once it has its
        # message, a large frame behind it is left in the stream (parked) rather than read
        # into a new buffer, so that the next receive takes it straight into its own
        # buffer (one copy instead of two). See _read.
        self._parking = -1
        self._seq = 0
        # How long a wait spins before it sleeps, adapted to what spinning buys (see
        # spinning.py); with more ranks on this host than cores it gives way every round.
        self._spinning = Spin(
            spinning.configured(None if endpoint is None else endpoint.spin),
            spinning.yield_mask(size if endpoint is None or endpoint.ranks_here is None
                                else endpoint.ranks_here))
        # Messages this large go by rendezvous: one copy, straight from the sender.
        self._rendezvous = singlecopy.threshold() if (
            endpoint is not None and any(map(endpoint.is_local, self._peers))
            and singlecopy.usable()) else _NEVER
        # ... and from this size (one part, its sender waiting), by both ranks at once.
        self._split = singlecopy.split_threshold() if self._rendezvous != _NEVER else _NEVER
        # The most a message takes the one-step paths here (never one that goes by
        # rendezvous).
        one_step = min(_ONE_STEP_LOCAL, self._rendezvous - 1)
        # A one-part message up to this size goes into the stream as one whole frame,
        # written once it fits, not a piece at a time as room frees up: the reader then
        # takes it straight into its buffer in one step.  Written in pieces, a reader
        # that has fallen behind takes each piece in Python, stays behind, and the
        # stream never leaves that pace (measured, 2 ranks, back-to-back 1 MiB Bcasts:
        # 340-770 us each, against 43 us whole).
        self._whole = 0 if endpoint is None else min(endpoint.whole_frames, one_step)
        self._puts: dict[tuple[int, int], bool | None] = {}  # (source, seq): PUT_DONE's news
        # THREAD_MULTIPLE: the lock guards all of the above; waiting threads release it.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._waiters = 0  # threads inside the sleeping phase of wait_until
        self._users: set[int] = set()  # threads that sent or waited through the general path
        self._sleeper = False  # one of them sleeps on the transport's doorbell
        # The one-call fast paths (see send_fast and receive_fast): the compiled rings
        # check this engine's state themselves, in the same step as they act.
        bind = getattr(endpoint, "bind_engine", None)
        self.fast = bind is not None
        if bind is not None:
            # The rings' one-step paths take a message whole up to a MiB (measured, 2
            # ranks: 64 KiB streamed 8.6 -> 15.0 GB/s, a ping-pong of 64 KiB 21.0 -> 8.4
            # us, of 1 MiB 209 -> 122), and never one that goes by rendezvous.
            bind(self._lock.locked, self.matcher.posted, self.matcher.unexpected, self._queues,
                 self._reading, one_step)
            self.send_fast = endpoint.send_fast  # type: ignore[union-attr,method-assign]
            self.receive_fast = endpoint.receive_fast  # type: ignore[union-attr,method-assign]
        elif endpoint is not None and endpoint.python_fast_paths:
            self.send_fast = self._send_fast  # type: ignore[method-assign]
            self.receive_fast = self._receive_fast  # type: ignore[method-assign]
            # Between hosts, the same steps compiled where they are built (TCP's
            # bind_fast_paths), the Python ones answering what they leave.
            paths = getattr(endpoint, "bind_fast_paths", lambda *_: None)(
                self._lock, self.matcher.posted, self.matcher.unexpected, self._queues,
                self._reading, self._acknowledge, self._receive_fast)
            if paths is not None:
                self.send_fast, self.receive_fast = paths  # type: ignore[method-assign]
        # A receive's first spin for its message, inside receive_fast (no spin when the
        # host has more ranks than cores: the rank we wait for needs this core).
        self.fast_spin_ns = self._spinning.fast_ns
        # A short Allreduce in one call, where the compiled rings offer it: None until
        # the collectives say which reductions it may do (bind_reductions).
        self.allreduce_fast: Callable[..., int] | None = None
        self.can_reduce = bind is not None and hasattr(endpoint, "set_reductions")

    def bind_reductions(self, table: dict[str, tuple[int, ...]]) -> None:
        """Hand the compiled rings the (format, op codes) pairs their one-call Allreduce
        takes (the collectives' choice, :func:`shoal.spmd.bufcoll._c_reductions`), and
        offer it as :attr:`allreduce_fast`."""
        endpoint: Any = self.endpoint
        endpoint.set_reductions(table)
        self.allreduce_fast = endpoint.allreduce_fast

    # -- sending ---------------------------------------------------------------

    def send(self, dst: int, ctx: int, tag: int, parts: list[Any], flags: int = 0) -> OutgoingSend:
        """Start sending ``parts`` (bytes-like, ``nbytes`` each) as one message."""
        lock = self._lock
        lock.acquire()
        try:
            self._seq += 1
            seq = self._seq
            if (len(parts) == 1 and dst != self.rank and not self._queues[dst]
                    and self.endpoint.send_frame(  # type: ignore[union-attr]
                        dst, DATA, flags, 1, tag, ctx, seq, parts[0], SMALL)):
                # The common case, in one call: a whole small frame went into the stream.
                if not flags & SYNC:
                    return _SENT
                outgoing = OutgoingSend(dst, _NO_CHUNKS, True, seq)
                self._awaiting_ack[seq] = outgoing
                return outgoing
            outgoing = self._send(dst, ctx, tag, parts, flags, seq)
            self._users.add(threading.get_ident())
        finally:
            lock.release()
        if self._waiters:
            self._wake()
        return outgoing

    def send_fast(self, dst: int, ctx: int, tag: int, payload: Any, flags: int) -> bool:
        """A standard send of one small payload in one step, if it can go at once.

        With the compiled rings this is their own method (no Python frame, no lock: it
        checks the engine's queue towards ``dst`` in the same step as it writes); False
        means the caller uses :meth:`send`.  Without them it always says False.
        """
        return False

    def receive_fast(self, source: int, ctx: int, tag: int, buffer: Any,
                     spin_ns: int) -> Message | None:
        """The next message from ``source`` if it is the answer to this receive and
        can be taken in one step (spinning up to ``spin_ns`` for it), its body copied into
        ``buffer`` (any writable contiguous buffer) if one is given; None means the
        caller uses :meth:`receive`.  With the compiled rings this is their own method;
        without them it always says None."""
        return None

    def _send_fast(self, dst: int, ctx: int, tag: int, payload: Any, flags: int) -> bool:
        """:meth:`send_fast` in Python, for a transport without compiled rings that says
        it pays (TCP): the same step (one small standard send, written whole, when
        nothing is queued towards ``dst``), under the lock; False if another thread
        holds it, or the payload is not plain contiguous bytes (the general path says
        what is wrong with it)."""
        if flags & SYNC or dst == self.rank:
            return False
        lock = self._lock
        if not lock.acquire(False):
            return False
        try:
            if self._queues[dst]:
                return False
            return self.endpoint.send_frame(  # type: ignore[union-attr]
                dst, DATA, flags, 1, tag, ctx, 0, payload, SMALL)
        except (BufferError, TypeError, ValueError):
            return False
        finally:
            lock.release()

    def _receive_fast(self, source: int, ctx: int, tag: int, buffer: Any,
                      spin_ns: int) -> Message | None:
        """:meth:`receive_fast` in Python (see :meth:`_send_fast`): the transport's
        ``take_match`` under the lock, when nothing is posted or waiting on ``ctx`` and
        no body from ``source`` is half read; if nothing is there, once more after its
        ``wait`` for ``source`` (up to ``spin_ns``).  A body larger than ``buffer`` is
        left to the general path, which says so."""
        if source == self.rank:
            return None
        endpoint = self.endpoint
        assert endpoint is not None
        limit = SMALL
        if buffer is not None:
            try:  # (one view, which the transport copies into too)
                if type(buffer) is not memoryview:
                    buffer = memoryview(buffer)
            except TypeError:
                return None
            limit = min(limit, buffer.nbytes)
        lock = self._lock
        matcher = self.matcher
        for attempt in range(2):
            if not lock.acquire(False):
                return None
            try:
                if (matcher.posted.get(ctx) or matcher.unexpected.get(ctx)
                        or self._reading[source] is not None):
                    return None
                try:
                    frame = endpoint.take_match(source, ctx, tag, limit, buffer)
                except BufferError:
                    return None
                if frame is not None:
                    if frame.flags & SYNC:
                        self._acknowledge(frame)
                    return frame
            finally:
                lock.release()
            if attempt or spin_ns <= 0 or not endpoint.wait(source, (), spin_ns, 0):
                return None
        return None

    def _send(self, dst: int, ctx: int, tag: int, parts: list[Any], flags: int,
              seq: int) -> OutgoingSend:
        sync = bool(flags & SYNC)
        if (len(parts) == 1 and dst != self.rank and not self._queues[dst]
                and not self.fast):  # (with the fast paths a frame is written whole or queued)
            part = parts[0]
            length = len(part) if type(part) is bytes else memoryview(part).nbytes
            if length <= SMALL:
                frame = HEADER.pack(DATA, flags, 1, 0, tag, ctx, seq, time.monotonic_ns(),
                                    length) + part
                written = self.endpoint.write(dst, frame)  # type: ignore[union-attr]
                if written == len(frame):
                    if not sync:
                        return _SENT
                    outgoing = OutgoingSend(dst, _NO_CHUNKS, sync, seq)
                    self._awaiting_ack[seq] = outgoing
                    return outgoing
                # The stream is nearly full: queue the rest of this frame.
                return self._enqueue(OutgoingSend(dst, [memoryview(frame)[written:]], sync, seq))
        views = [p if isinstance(p, memoryview) else memoryview(p) for p in parts]
        lengths = [v.nbytes for v in views]
        length = body_length(lengths)
        if (length >= self._rendezvous and dst != self.rank and len(views) <= _MAX_PARTS
                and self.endpoint.is_local(dst)):  # type: ignore[union-attr]
            return self._send_rendezvous(dst, ctx, tag, views, lengths, length, flags, seq)
        header = HEADER.pack(DATA, flags, len(views), 0, tag, ctx, seq, time.monotonic_ns(),
                             length)
        if dst == self.rank:
            return self._send_to_self(header, views, lengths, sync, seq)
        outgoing = OutgoingSend(dst, self._chunks(header, views, lengths, length), sync, seq)
        outgoing.whole = len(views) == 1 and length <= self._whole
        return self._enqueue(outgoing)

    def _send_rendezvous(self, dst: int, ctx: int, tag: int, views: list[memoryview],
                         lengths: list[int], length: int, flags: int,
                         seq: int) -> OutgoingSend:
        """Tell ``dst`` where the message is; it copies it out and acknowledges."""
        flat, pieces = singlecopy.offer(views, lengths)
        body = rts_body(os.getpid(), length, pieces)
        frame = HEADER.pack(RTS, flags, len(views), 0, tag, ctx, seq, time.monotonic_ns(),
                            len(body)) + body
        outgoing = OutgoingSend(dst, [memoryview(frame)], True, seq)
        outgoing.hold = flat
        return self._enqueue(outgoing)

    def _enqueue(self, outgoing: OutgoingSend) -> OutgoingSend:
        if outgoing.sync:
            self._awaiting_ack[outgoing.seq] = outgoing
        self._queues[outgoing.dst].append(outgoing)
        self._busy.add(outgoing.dst)
        self._pump(outgoing.dst)
        return outgoing

    @staticmethod
    def _chunks(header: bytes, views: list[memoryview], lengths: list[int],
                length: int) -> list[memoryview]:
        chunks = [memoryview(header)]
        if len(views) > 1:
            chunks.append(memoryview(part_table(lengths)))
            for view, n in zip(views, lengths, strict=True):
                chunks.append(view.cast("B") if view.format != "B" or view.ndim != 1 else view)
                if padded(n) != n:
                    chunks.append(memoryview(_ZEROS)[:padded(n) - n])
        elif length:
            view = views[0]
            chunks.append(view.cast("B") if view.format != "B" or view.ndim != 1 else view)
        return chunks

    def _send_to_self(self, header: bytes, views: list[memoryview], lengths: list[int],
                      sync: bool, seq: int) -> OutgoingSend:
        _, flags, nparts, _, tag, ctx, _, stamp, length = HEADER.unpack(header)
        if nparts == 1:
            body: Any = bytes(views[0].cast("B") if views[0].ndim != 1 else views[0])
        else:
            assembled = bytearray(part_table(lengths))
            for view, n in zip(views, lengths, strict=True):
                assembled += view.cast("B") if view.format != "B" or view.ndim != 1 else view
                assembled += bytes(padded(n) - n)
            body = assembled
        outgoing = OutgoingSend(self.rank, [], sync, seq)
        if sync:
            self._awaiting_ack[seq] = outgoing
        else:
            outgoing.done = True
        message = Message(self.rank, tag, ctx, flags, nparts, seq, stamp, length, body)
        receive = self.matcher.arrive(message)
        if receive is not None:
            self._complete(receive, message)
        return outgoing

    def _pump(self, dst: int) -> None:
        """Write as much of ``dst``'s queue as its stream takes now."""
        queue = self._queues[dst]
        write = self.endpoint.write  # type: ignore[union-attr]
        write_more = self.endpoint.write_more  # type: ignore[union-attr]
        while queue:
            outgoing = queue[0]
            chunks = outgoing.chunks
            last = len(chunks) - 1
            if outgoing.whole and not outgoing.index and not outgoing.offset:
                kind, flags, nparts, _, tag, ctx, seq, _, _ = HEADER.unpack(chunks[0])
                if not self.endpoint.send_frame(  # type: ignore[union-attr]
                        dst, kind, flags, nparts, tag, ctx, seq,
                        chunks[1] if last else b"", self._whole):
                    return  # (no room for all of it yet)
                outgoing.index = last + 1
            while outgoing.index <= last:
                chunk = chunks[outgoing.index]
                remaining = chunk[outgoing.offset:] if outgoing.offset else chunk
                # The rest of the message follows at once: a transport may send them together.
                n = (write if outgoing.index == last else write_more)(dst, remaining)
                if n < len(remaining):
                    outgoing.offset += n
                    return
                outgoing.index += 1
                outgoing.offset = 0
            queue.popleft()
            outgoing.chunks = []
            if not outgoing.sync:
                outgoing.done = True
        self._busy.discard(dst)

    # -- receiving -------------------------------------------------------------

    def post(self, receive: PostedReceive) -> None:
        """Post a receive; it completes now if a matching message waits.

        Posting before reading lets a large message that is still in the stream
        go straight into the receive's buffer.
        """
        lock = self._lock
        lock.acquire()
        try:
            message = self.matcher.post(receive)
            if message is not None:
                self._complete(receive, message)
            else:
                self._progress()
        finally:
            lock.release()
        if self._waiters:
            self._wake()

    def try_receive(self, ctx: int, source: int, tag: int,
                    buffer: memoryview | None = None) -> Message | None:
        """The message a receive would get right now, matched, without waiting; None if
        it must wait."""
        lock = self._lock
        lock.acquire()
        try:
            message = self._try_receive(ctx, source, tag, buffer)
        finally:
            lock.release()
        if self._waiters:
            self._wake()
        return message

    def _try_receive(self, ctx: int, source: int, tag: int, buffer: memoryview | None,
                     stream_into: bool = False) -> Message | None:
        """The fast path of a blocking receive: no receive object is posted when
        the message is already here.  Earlier posted receives on the same context
        come first: with any of those, nothing is taken straight off the stream (a
        frame is read in, so that they match it if they can), but a message already
        waiting in the unexpected queue is this receive's to take, as posting it
        would (no earlier receive matched it when it arrived, so none ever will).
        """
        matcher = self.matcher
        posted = matcher.posted.get(ctx)
        endpoint = self.endpoint
        if endpoint is not None:
            if source >= 0:
                if source != self.rank and self._reading[source] is None:
                    if not posted and not matcher.unexpected.get(ctx):
                        # Nothing waits on this context: the next frame from the source
                        # is the answer if it matches (its body straight into the buffer,
                        # however large, when the whole frame is in the stream already).
                        limit = SMALL if buffer is None else max(SMALL, buffer.nbytes)
                        direct = endpoint.take_match(source, ctx, tag, limit, buffer)
                        if direct is not None:
                            if direct.flags & SYNC:
                                self._acknowledge(direct)
                            return direct
                        if not endpoint.readable(source):
                            return None
                        if stream_into and buffer is not None:
                            return None  # the caller posts: a large body streams into place
                    self._read(source)
            else:
                for peer in self._peers:
                    self._read(peer)
        message = matcher.take(ctx, source, tag)
        if message is not None:
            self._matched(message, buffer)
        return message

    def receive(self, ctx: int, source: int, tag: int, buffer: memoryview | None,
                describe: Callable[..., str], *what: Any) -> Message:
        """A blocking receive: the matched message; with a ``buffer``, the body is in it
        (and ``message.body`` is None).  ``describe(*what)`` says what is awaited, should
        the rank have to sleep (it is formatted only then).

        While spinning it watches only the awaited source's stream, which is much
        cheaper than full progress (inside the transport and without the GIL where
        it can); between spins it makes full progress so no other stream stalls.  A
        large message, or no message within the spin time, falls back to a posted
        receive.
        """
        lock = self._lock
        lock.acquire()
        try:
            message = self._try_receive(ctx, source, tag, buffer, True)
        finally:
            lock.release()
        if message is not None:
            if self._waiters:
                self._wake()
            return into_buffer(message, buffer)
        endpoint = self.endpoint
        spin = self._spinning
        if endpoint is not None and not spin.seconds and 0 <= source != self.rank:
            message = self._sleep_for(ctx, source, tag, buffer)
            if message is not None:
                return into_buffer(message, buffer)
        elif endpoint is not None and spin.seconds and not (
                0 <= source != self.rank and endpoint.readable(source) >= HEADER_SIZE):
            started = time.perf_counter()
            deadline = started + spin.seconds
            watch = source if 0 <= source != self.rank else -1
            # Once a frame that is not whole yet is next in the awaited stream, post, so
            # that its body goes straight into the buffer: read in here it would go into a
            # new one (fresh memory: on a VM, 256 page faults a MiB, some 0.6 ms), then be
            # copied.  Locally too: a message up to a MiB streams through the ring (a
            # larger one's offer is read and matched once the receive is posted).
            stream = watch >= 0
            mask = spin.yield_mask
            spins = 0
            while True:
                if endpoint.wait(watch, self._busy, SPIN_QUANTUM_NS, spin.yield_rounds):
                    spins = -1  # something arrived: look at once
                lock.acquire()
                try:
                    message = self._try_receive(ctx, source, tag, buffer, stream)
                    if message is None:
                        if watch >= 0 and endpoint.readable(watch) >= HEADER_SIZE:
                            break  # a large frame: post so it streams into place
                        spins += 1
                        if not spins & mask:
                            self._progress()
                finally:
                    lock.release()
                if message is not None:
                    self._spun(True)
                    if self._waiters:
                        self._wake()
                    return into_buffer(message, buffer)
                if not spins & mask:
                    if time.perf_counter() > deadline:
                        if not mask:  # (otherwise the wait below adapts)
                            self._spun(False)
                        elif not endpoint.sleeps_unlocked and 0 <= source != self.rank:
                            # A transport whose sleep reads the stream (TCP): sleep in
                            # it and take the message straight off it, as with no spin.
                            message = self._sleep_for(ctx, source, tag, buffer)
                            if message is not None:
                                self._slept(time.perf_counter() - started)
                                return into_buffer(message, buffer)
                        break
                    give_way()
        receive = PostedReceive(ctx, source, tag, buffer)
        parking = buffer is not None and 0 <= source != self.rank
        if parking:
            self._parking = source
        try:
            self.post(receive)
            if not receive.done:
                try:
                    self.wait_until(lambda: receive.done, lambda: describe(*what))
                except BaseException:
                    # Interrupted (Ctrl-C, a signal handler that raised): withdraw the
                    # receive, so its message goes to the next receive, not to nobody.
                    self.cancel(receive)
                    raise
        finally:
            if parking and self._parking == source:
                self._parking = -1
        if receive.error is not None:
            raise receive.error
        assert receive.message is not None
        return receive.message

    def cancel(self, receive: PostedReceive) -> bool:
        with self._lock:
            if self.matcher.cancel(receive):
                receive.cancelled = True
                receive.done = True
                return True
            return False

    def probe(self, ctx: int, source: int, tag: int, take: bool) -> Message | None:
        """The waiting message a receive would match now, removed if ``take``."""
        with self._lock:
            self._progress()
            if take:
                message = self.matcher.take(ctx, source, tag)
                if message is not None:
                    self._matched(message, None)
            else:
                message = self.matcher.find(ctx, source, tag)
        if self._waiters:
            self._wake()
        if message is None:
            self.idle()
        return message

    def _complete(self, receive: PostedReceive, message: Message) -> None:
        """Give a complete message to the receive it matched."""
        receive.message = message
        buffer = receive.buffer
        self._matched(message, buffer)
        if buffer is not None and message.body is not None:
            if message.length > buffer.nbytes:
                receive.error = _truncated(message.length, buffer.nbytes)
                buffer[:] = memoryview(message.body)[:buffer.nbytes]
            else:
                buffer[:message.length] = memoryview(message.body)[:message.length]
            message.body = None
        receive.done = True

    def _matched(self, message: Message, buffer: memoryview | None) -> None:
        """A message was just matched: copy a rendezvous body over (into ``buffer`` when it
        fits), or tell a synchronous sender its message was received."""
        if message.remote is not None:
            self._pull(message, buffer)
        elif message.flags & SYNC:
            self._acknowledge(message)

    def _pull(self, message: Message, buffer: memoryview | None) -> None:
        """Copy a rendezvous message out of its sender (into ``buffer`` if given)."""
        if (message.flags & WAITS and message.nparts == 1 and message.length >= self._split
                and message.source != self.rank):
            copied = self._pull_halves(message, buffer)
        else:
            copied = singlecopy.copy_out(message, buffer)
        if not copied:
            raise CommunicationError(
                f"rank {self.rank} could not copy a {message.length}-byte message out of rank "
                f"{message.source} (process_vm_readv was refused); run with SHOAL_CMA=0 to "
                "send large messages through shared memory instead")
        self._acknowledge(message)

    def _pull_halves(self, message: Message, buffer: memoryview | None) -> bool:
        """Copy a large one-part message with two cores: ask its sender (which waits in a
        blocking send, so makes progress) to write the second half into place (PUT) while
        this rank reads the first, then wait for the sender's PUT_DONE.  Under the lock,
        as the whole copy is; the wait makes progress on every stream (sending what is
        queued, answering PUTs), so ranks waiting on each other all go on."""
        assert message.remote is not None
        pid, ((address, length),) = message.remote
        message.remote = None
        source, seq = message.source, message.seq
        target = singlecopy.one_part_target(message, buffer)
        half = singlecopy.split_point(length)
        key = (source, seq)
        self._puts[key] = None
        put = singlecopy.put_frame(seq, target, half)
        self._enqueue(OutgoingSend(source, [memoryview(put)], False, 0))
        copied = singlecopy.read_part(pid, address, target, 0, half)
        # The sender's answer, whatever became of our half: until it comes, it may still
        # write into the target.
        endpoint = self.endpoint
        assert endpoint is not None
        parking, self._parking = self._parking, -1  # (nothing may park in front of it)
        try:
            while self._puts[key] is None:
                # Every stream: a PUT from any rank is answered meanwhile (threads of
                # three ranks each waiting here on the next one would otherwise wait forever).
                self._progress()
                if self._puts[key] is None:
                    endpoint.wait(-1, self._busy, SPIN_QUANTUM_NS, self._spinning.yield_rounds)
        finally:
            self._parking = parking
        if not self._puts.pop(key):  # the sender could not write: read that half too
            copied = copied and singlecopy.read_part(pid, address, target, half, length)
        return copied

    def _serve_put(self, frame: Message) -> None:
        """A receiver asks for the second half of a large message of ours (PUT): write
        it into its memory, and say so (PUT_DONE, with FAILED if that could not be)."""
        outgoing = self._awaiting_ack.get(frame.seq)
        answer = singlecopy.serve_put(frame, None if outgoing is None else outgoing.hold)
        self._enqueue(OutgoingSend(frame.source, [memoryview(answer)], False, 0))

    def _acknowledge(self, message: Message) -> None:
        if message.source == self.rank:
            waiting = self._awaiting_ack.pop(message.seq, None)
            if waiting is not None:
                waiting.done = True
            return
        ack = HEADER.pack(ACK, 0, 0, 0, 0, 0, message.seq, 0, 0)
        self._enqueue(OutgoingSend(message.source, [memoryview(ack)], False, 0))

    # -- progress and waiting ---------------------------------------------------

    def progress(self) -> None:
        """Push queued sends and take in whatever has arrived, without blocking."""
        if self.endpoint is None:
            return
        lock = self._lock
        lock.acquire()
        try:
            self._progress()
        finally:
            lock.release()
        if self._waiters:
            self._wake()

    def _progress(self) -> None:
        if self.endpoint is None:
            return
        if self._busy:
            for dst in tuple(self._busy):
                self._pump(dst)
        for src in self._peers:
            self._read(src)

    def close(self, flush: bool = True) -> None:
        """Finish queued sends (unless not ``flush``), then release the transport."""
        if self.endpoint is None:
            return
        if flush:
            self.wait_until(lambda: not self._busy, lambda: "Finalize (flushing sends)")
        with self._lock:
            endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            endpoint.close()


_NEVER = 1 << 62
_MAX_PARTS = 1000  # an RTS body stays under SMALL bytes


def into_buffer(message: Message, buffer: memoryview | None) -> Message:
    """A message taken whole off a stream, its body copied into ``buffer`` if one is given."""
    if buffer is not None and message.body is not None:
        if message.length > buffer.nbytes:
            raise _truncated(message.length, buffer.nbytes)
        buffer[:message.length] = message.body
        message.body = None
    return message


def _truncated(length: int, capacity: int) -> CommunicationError:
    from shoal.spmd.constants import ERR_TRUNCATE
    from shoal.spmd.constants import Exception as MPIException

    return MPIException(ERR_TRUNCATE,
                        f"message truncated: {length} bytes arrived for a {capacity}-byte buffer")
