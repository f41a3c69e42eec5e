"""The engine under threads (THREAD_MULTIPLE), in one process: two ranks' engines over a
real shared-memory segment, on the compiled rings (one-step fast paths) and on the
Python rings (everything under the engine's lock).

Several threads of each "rank" send and receive at once, mixing the fast paths with the
general ones (synchronous sends, large messages that take the queue, ANY_SOURCE,
posted receives); every message must arrive exactly once, with its payload, and in the
order its thread sent it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from engine_pair import engines, run_threads

from shoal.spmd import engine as engine_module
from shoal.spmd.engine import Engine
from shoal.spmd.matching import ANY_SOURCE, PostedReceive
from shoal.transport.shm import PyRings
from shoal.wire.header import SYNC, WAITS

try:
    from shoal.transport._shmcore import Rings as CompiledRings
except ImportError:
    CompiledRings = None

pytestmark = pytest.mark.timeout(120)

KINDS = [
    pytest.param(PyRings, id="python"),
    pytest.param(CompiledRings, id="compiled", marks=pytest.mark.skipif(
        CompiledRings is None, reason="the compiled rings were not built")),
]
THREADS = 4
MESSAGES = 400
DESCRIBE = lambda *what: "test"  # noqa: E731


@pytest.mark.parametrize("kind", KINDS)
def test_threads_exchanging_on_their_own_tags_lose_duplicate_and_reorder_nothing(kind) -> None:
    job, (a, b) = engines(kind)

    def payload(thread: int, i: int) -> bytes:
        # Mostly small (the fast paths), now and then large (queued, streamed in).
        size = 40_000 if i % 37 == 0 else 8 + i % 200
        return bytes([thread]) * 4 + i.to_bytes(4, "little") + bytes(size)

    def sender(engine: Engine, dst: int, thread: int) -> None:
        for i in range(MESSAGES):
            flags = SYNC if i % 50 == 0 else 0
            outgoing = engine.send(dst, 0, thread, [payload(thread, i)], flags)
            if not outgoing.done:
                engine.wait_until(lambda o=outgoing: o.done, lambda: "send")

    def receiver(engine: Engine, src: int, thread: int) -> None:
        for i in range(MESSAGES):
            if i % 3 == 0:  # a posted receive, then wait for it
                receive = PostedReceive(0, src, thread)
                engine.post(receive)
                engine.wait_until(lambda r=receive: r.done, lambda: "recv")
                message = receive.message
            else:
                message = engine.receive(0, src, thread, None, DESCRIBE)
            body = bytes(message.body)
            assert body[:4] == bytes([thread]) * 4, (thread, body[:8])
            assert int.from_bytes(body[4:8], "little") == i, (thread, i, body[:8])
            assert body == payload(thread, i)

    try:
        run_threads(*(lambda t=t: sender(a, 1, t) for t in range(THREADS)),
                    *(lambda t=t: receiver(b, 0, t) for t in range(THREADS)),
                    *(lambda t=t: sender(b, 0, THREADS + t) for t in range(THREADS)),
                    *(lambda t=t: receiver(a, 1, THREADS + t) for t in range(THREADS)))
    finally:
        for engine in (a, b):
            engine.close()
        job.close()


@pytest.mark.parametrize("kind", KINDS)
def test_any_source_receivers_and_fast_receivers_share_a_context_without_losing_order(
        kind) -> None:
    # On one context, one thread takes tag 1 from rank 0 (the fast path when nothing else
    # is posted), another takes ANY_SOURCE/tag 2 (always the general path): both must see
    # their sender's order, whatever the other does to the matching state meanwhile.
    job, (a, b) = engines(kind, ring_bytes=4096)

    def send(tag: int) -> None:
        for i in range(MESSAGES):
            outgoing = a.send(1, 8, tag, [i.to_bytes(4, "little") * (1 + i % 50)])
            if not outgoing.done:  # the ring is small: a standard send waits for room
                a.wait_until(lambda o=outgoing: o.done, lambda: "send")

    def take(source: int, tag: int) -> None:
        for i in range(MESSAGES):
            message = b.receive(8, source, tag, None, DESCRIBE)
            assert int.from_bytes(bytes(message.body)[:4], "little") == i, (tag, i)
            assert message.source == 0

    try:
        run_threads(lambda: send(1), lambda: send(2), lambda: take(0, 1),
                    lambda: take(ANY_SOURCE, 2))
    finally:
        for engine in (a, b):
            engine.close()
        job.close()


def test_the_compiled_fast_paths_stand_aside_while_the_engine_is_busy() -> None:
    if CompiledRings is None:
        pytest.skip("the compiled rings were not built")
    job, (a, b) = engines(CompiledRings)
    try:
        assert a.fast and b.fast
        # Something posted on the context comes first (MPI's order): no fast receive.
        posted = PostedReceive(0, 0, 6)
        b.post(posted)
        assert a.send_fast(1, 0, 5, b"first", 0)
        assert b.receive_fast(0, 0, 5, None, 0) is None
        assert b.cancel(posted)
        # The engine's lock held by another thread: the fast receive stands aside too.
        with b._lock:
            assert b.receive_fast(0, 0, 5, None, 0) is None
        message = b.receive_fast(0, 0, 5, None, 0)
        assert message is not None and bytes(message.body) == b"first"
        # A queued send towards the destination: no fast send past it.
        big = bytes(200_000)
        outgoing = a.send(1, 0, 7, [big])
        assert not outgoing.done and a._queues[1]
        assert not a.send_fast(1, 0, 8, b"overtaker", 0)
        got = []
        run_threads(lambda: got.append(b.receive(0, 0, 7, None, DESCRIBE)),
                    lambda: a.wait_until(lambda: outgoing.done, lambda: "send"))
        assert bytes(got[0].body) == big
        # A synchronous send needs its acknowledgement: never the fast path.
        assert not a.send_fast(1, 0, 9, b"sync", SYNC)
        # A payload that is not contiguous bytes is the general path's to judge.
        assert not a.send_fast(1, 0, 9, memoryview(bytes(8))[::2], 0)
    finally:
        for engine in (a, b):
            engine.close()
        job.close()


def test_the_compiled_rings_take_an_eager_message_whole_in_one_step() -> None:
    # Up to the limit the engine binds the rings to (a MiB, or less where a single copy
    # takes over sooner) a message that fits in the ring now is written and read in one
    # call each; one at the rendezvous threshold, and one that does not fit, take the
    # general path, with the same result.
    if CompiledRings is None:
        pytest.skip("the compiled rings were not built")
    job, (a, b) = engines(CompiledRings, ring_bytes=1024 * 1024)
    rendezvous = 700 * 1024
    try:
        for engine in (a, b):  # (as an engine with single copies from 700 KiB binds them)
            engine._rendezvous = rendezvous
            engine.endpoint.bind_engine(engine._lock.locked, engine.matcher.posted,
                                        engine.matcher.unexpected, engine._queues,
                                        engine._reading, rendezvous - 1)
        for size in (16 * 1024 + 1, 100_000, rendezvous - 1):
            payload = os.urandom(size)
            into = bytearray(size)
            assert a.send_fast(1, 0, 4, payload, 0), size
            frame = b.receive_fast(0, 0, 4, into, 0)
            assert frame is not None and frame.body is None and frame.length == size
            assert into == payload
        assert not a.send_fast(1, 0, 4, bytes(rendezvous), 0)
        # Larger than the ring's free space: the general path, in order.
        first, second = os.urandom(600_000), os.urandom(600_000)
        assert a.send_fast(1, 0, 5, first, 0)
        assert not a.send_fast(1, 0, 5, second, 0)
        outgoing = a.send(1, 0, 5, [second])
        got: list = []
        run_threads(lambda: got.extend(b.receive(0, 0, 5, None, DESCRIBE) for _ in range(2)),
                    lambda: a.wait_until(lambda: outgoing.done, lambda: "send"))
        assert [bytes(m.body) for m in got] == [first, second]
        with pytest.raises(ValueError):
            a.endpoint.bind_engine(a._lock.locked, a.matcher.posted, a.matcher.unexpected,
                                   a._queues, a._reading, -1)
    finally:
        for engine in (a, b):
            engine.close()
        job.close()


def test_the_engine_binds_the_rings_to_its_eager_limit() -> None:
    if CompiledRings is None:
        pytest.skip("the compiled rings were not built")
    job, (a, b) = engines(CompiledRings, ring_bytes=4 * 1024 * 1024)
    try:
        # A MiB, or less where a single copy takes over sooner.
        limit = min(engine_module._ONE_STEP_LOCAL, a._rendezvous - 1)
        assert limit >= 1024 * 1024 - 1
        payload = os.urandom(limit)
        assert a.send_fast(1, 0, 6, payload, 0)
        assert bytes(b.receive_fast(0, 0, 6, None, 0).body) == payload
        assert not a.send_fast(1, 0, 6, payload + b"!", 0)  # one byte more: not in one step
    finally:
        for engine in (a, b):
            engine.close()
        job.close()


@pytest.mark.timeout(20)
def test_a_fast_receive_does_not_spin_while_the_engine_already_holds_the_message() -> None:
    # The message was taken out of the ring into the engine's unexpected queue (progress
    # reads whatever arrived): spinning on the now empty ring for it would wait the whole
    # spin (here far longer than the test's timeout) for nothing.
    if CompiledRings is None:
        pytest.skip("the compiled rings were not built")
    job, (a, b) = engines(CompiledRings, ring_bytes=256 * 1024)
    try:
        a.send(1, 0, 3, [bytes(range(256)) * 256])  # 64 KiB: not a fast-path frame
        b.progress()
        assert b.endpoint.readable(0) == 0  # it left the ring: the engine holds it
        assert b.receive_fast(0, 0, 3, None, 60 * 10**9) is None
        message = b.receive(0, 0, 3, None, DESCRIBE)
        assert bytes(message.body) == bytes(range(256)) * 256
    finally:
        for engine in (a, b):
            engine.close()
        job.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_signal_reaches_a_rank_asleep_in_a_receive(kind) -> None:
    # Ctrl-C (or any handler) must not wait for a message that never comes.
    import signal
    import time

    job, (a, b) = engines(kind)

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        started = time.monotonic()
        with pytest.raises(Interrupted):
            b.receive(0, 0, 1, None, DESCRIBE)  # nothing is ever sent
        assert time.monotonic() - started < 10
        # The engine is still usable afterwards: its lock was released on the way out.
        assert a.send(1, 0, 1, [b"after"]).done
        assert bytes(b.receive(0, 0, 1, None, DESCRIBE).body) == b"after"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for engine in (a, b):
            engine.close()
        job.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writes", ["allowed", "refused"])
def test_a_large_message_from_a_waiting_sender_is_copied_by_both_ranks_at_once(
        kind, writes, monkeypatch) -> None:
    from shoal.spmd import engine as engine_module
    from shoal.transport import cma

    job, (a, b) = engines(kind)
    try:
        if a._split == engine_module._NEVER:
            pytest.skip("process_vm_readv cannot be used here")
        if writes == "refused":  # as if the kernel refused process_vm_writev: b copies it all
            monkeypatch.setattr(cma, "write", lambda *args: False)
        served = []
        serve = a._serve_put

        def spy(frame):
            served.append(frame.seq)
            serve(frame)

        a._serve_put = spy
        size = (3 << 20) + 12345  # an odd size: the halves meet on a page boundary
        payload = (bytes(range(251)) * (size // 251 + 1))[:size]

        def exchange(flags: int, target: bytearray | None) -> Any:
            got = []

            def send() -> None:
                outgoing = a.send(1, 0, 7, [payload], flags)
                a.wait_until(lambda: outgoing.done, DESCRIBE)

            def receive() -> None:
                got.append(b.receive(0, 0, 7, None if target is None else memoryview(target),
                                     DESCRIBE))

            run_threads(send, receive)
            return got[0]

        # A blocking send (WAITS): the receiver asks the sender to write the second half.
        target = bytearray(size + 100)
        message = exchange(WAITS, target)
        assert message.length == size and target[:size] == payload and target[size:] == bytes(100)
        assert len(served) == 1
        # Into a new body (no buffer), and through a synchronous send.
        message = exchange(WAITS | SYNC, None)
        assert bytes(message.body) == payload and len(served) == 2
        # A sender that may not be waiting (Isend): the receiver copies it all alone.
        target = bytearray(size)
        exchange(0, target)
        assert target == payload and len(served) == 2
    finally:
        for engine in (a, b):
            engine.close()
        job.close()
