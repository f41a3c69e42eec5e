"""A message up to a link's ``one_frame`` bytes between hosts: one frame, sealed and sent
in one call, read and decrypted into the receive's buffer in one call (the compiled
record core's seal_send and recv_take); larger ones, and every message where the record
layer is Python's, take the general path, with the same results."""

from __future__ import annotations

import os

import pytest
from transport_helpers import close_all, counting, in_threads, proxied_pair, recv, send

from shoal.errors import CommunicationError, PeerLostError, TransportError
from shoal.security import IntegrityError
from shoal.security.channel import SEAL_SEND_LIMIT
from shoal.spmd.engine import Engine
from shoal.transport import tcp as tcp_module
from shoal.wire.header import HEADER_SIZE

pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("record_core")]


def _send(a: Engine, payload: bytes, tag: int) -> None:
    outgoing = a.send(1, 0, tag, [payload])
    a.wait_until(lambda: outgoing.done, lambda: "send")


def _exchange(a: Engine, b: Engine, payload: bytes, tag: int) -> tuple[bool, bytes]:
    """Send ``payload`` from a to b by the one-step paths where they take it (else the
    general ones); whether the send was one step, and what b received."""
    one_step = a.send_fast(1, 0, tag, payload, 0)
    if not one_step:
        _send(a, payload, tag)
    into = bytearray(len(payload))
    frame = b.receive_fast(0, 0, tag, into, 2_000_000_000)
    if frame is None:
        frame = b.receive(0, 0, tag, memoryview(into), lambda: "recv")
    assert frame.length == len(payload) and frame.tag == tag
    return one_step, bytes(into)


def test_a_message_up_to_one_frame_is_one_call_each_way(pair, record_core) -> None:
    a, b = pair
    link = a.endpoint.links[1]
    _exchange(a, b, b"hello", 1)  # (the first frame of each direction is the record layer's)
    if record_core == "python":
        assert link.one_frame == 0
        for size in (16 * 1024 + 1, 100_000):  # the general path, as before
            payload = os.urandom(size)
            assert _exchange(a, b, payload, 2) == (False, payload)
        return
    assert link.one_frame == min(SEAL_SEND_LIMIT, link.channel.send_max_frame) - HEADER_SIZE
    taken = counting(b.endpoint.links[0], "recv_take")
    sizes = (16 * 1024 + 1, 64 * 1024, 100_000, link.one_frame)
    for size in sizes:
        payload = os.urandom(size)
        assert _exchange(a, b, payload, 3) == (True, payload), size
    assert taken.count(True) == len(sizes), taken
    # One byte more: the general path (a header frame, then the body's frames).
    payload = os.urandom(link.one_frame + 1)
    assert _exchange(a, b, payload, 4) == (False, payload)
    # The engine's own send takes the one-frame path too, and the other way round.
    payload = os.urandom(50_000)
    outgoing = b.send(0, 0, 5, [payload])
    assert outgoing.done
    assert bytes(a.receive(0, 1, 5, None, lambda: "recv").body) == payload


def test_a_large_one_frame_message_waits_in_the_inbox_for_its_receive(pair,
                                                                      record_core) -> None:
    """A one-frame message that is not the one asked for, or comes before its receive,
    is opened into the inbox and found there by the general path, in order."""
    a, b = pair
    _exchange(a, b, b"hello", 1)
    first, second = os.urandom(60_000), os.urandom(70_000)
    for tag, payload in ((7, first), (8, second)):
        _send(a, payload, tag)
    into = bytearray(70_000)
    assert b.receive_fast(0, 0, 8, into, 0) is None  # tag 7 comes first
    assert into == bytearray(70_000)
    assert bytes(b.receive(0, 0, 8, None, lambda: "recv").body) == second
    assert bytes(b.receive(0, 0, 7, None, lambda: "recv").body) == first


# -- the one-step paths against the general ones, compiled and in Python ------------


def test_waiting_for_one_link_peeks_at_its_socket_when_compiled(pair, record_core) -> None:
    a, b = pair
    link = b.endpoint.links[0]
    if record_core == "python":
        assert link.spin_readable is None  # (the epoll loop above)
        return
    peeks = []
    spin_readable = link.spin_readable
    link.spin_readable = lambda fd, ns: peeks.append(ns) or spin_readable(fd, ns)
    assert b.endpoint.wait(0, (), 1_000_000, 0) is False and peeks == [1_000_000]
    send(a, 1, b"peeked, not taken")
    assert b.endpoint.wait(0, (), 5_000_000_000, 0) is True and link.ready
    assert recv(b, 0) == b"peeked, not taken"  # the peek took nothing from the stream
    # Busy links or yielding need epoll (writability, sched_yield): no peek then.
    assert b.endpoint.wait(0, (), 1_000_000, 1) is False and len(peeks) == 2
    # A peer that hangs up makes the socket readable too (its end).
    a.endpoint.close()
    assert b.endpoint.wait(0, (), 5_000_000_000, 0) is True


def test_the_engine_takes_its_one_step_paths_on_tcp(pair, record_core) -> None:
    # Compiled (the record core's calls under _tcpcore's) or in Python: the same steps.
    a, b = pair
    if record_core == "python" or tcp_module._Fast is None:
        assert a.send_fast == a._send_fast and b.receive_fast == b._receive_fast
    else:
        assert type(a.send_fast.__self__) is tcp_module._Fast
        assert type(b.receive_fast.__self__) is tcp_module._Fast
    assert a.send_fast(1, 0, 3, b"one step", 0) is True
    frame = b.receive_fast(0, 0, 3, None, 2_000_000_000)  # spins until it is there
    assert frame is not None and bytes(frame.body) == b"one step" and frame.tag == 3
    # Into a buffer of any item size; a body larger than the buffer is left to the
    # general path, which says it would be truncated.
    import numpy as np

    a.send_fast(1, 0, 4, np.arange(4, dtype=np.float64), 0)
    into = np.zeros(4)
    frame = b.receive_fast(0, 0, 4, into, 2_000_000_000)
    assert frame is not None and frame.body is None and into.tolist() == [0, 1, 2, 3]
    a.send_fast(1, 0, 5, b"z" * 64, 0)
    assert b.receive_fast(0, 0, 5, bytearray(8), 100_000_000) is None
    with pytest.raises(CommunicationError, match="64 bytes arrived for a 8-byte buffer"):
        b.receive(0, 0, 5, memoryview(bytearray(8)), lambda: "recv")


def test_the_one_step_paths_answer_what_the_general_path_would(pair) -> None:
    # On both paths (the compiled one hands every case but the plain one to Python's).
    a, b = pair
    send(a, 1, b"hello")  # (the first frame of each direction is the record layer's)
    assert recv(b, 0) == b"hello"
    send(b, 0, b"hello")
    assert recv(a, 1) == b"hello"
    # A synchronous send's frame taken by the one-step receive is acknowledged.
    outgoing = a.send(1, 0, 5, [b"sync"], 0x02)
    into = bytearray(4)
    frame = b.receive_fast(0, 0, 5, into, 2_000_000_000)
    assert frame is not None and frame.flags & 0x02 and into == b"sync"
    a.wait_until(lambda: outgoing.done, lambda: "the acknowledgement")
    # Another tag first: it waits (in the inbox), the awaited one comes after it.
    assert a.send_fast(1, 0, 1, b"one", 0) and a.send_fast(1, 0, 2, b"two", 0)
    assert b.endpoint.wait(0, (), 5_000_000_000, 0)
    into = bytearray(3)
    frame = b.receive_fast(0, 0, 2, into, 50_000_000)
    if frame is None:  # (the first is not its answer: the general path)
        b.receive(0, 0, 2, memoryview(into), lambda: "recv")
    assert into == b"two" and recv(b, 0, tag=1) == b"one"
    # A read-only buffer: the general path's to refuse.
    a.send_fast(1, 0, 3, b"three", 0)
    assert b.receive_fast(0, 0, 3, b"read-only", 2_000_000_000) is None
    assert recv(b, 0, tag=3) == b"three"
    # Bytes queued on the link go first: no one-step send past them.
    link = a.endpoint.links[1]
    link.out.append(memoryview(b""))
    assert a.send_fast(1, 0, 4, b"later", 0) is False
    link.out.clear()
    # A peer that closed (cleanly): nothing comes, and sending to it is the error.
    a.endpoint.close()
    for _ in range(20):
        assert b.receive_fast(0, 0, 6, bytearray(8), 5_000_000) is None
    assert b.endpoint.links[0].peer_closed
    with pytest.raises(PeerLostError, match="closed its link"):
        b.send_fast(0, 0, 6, b"anyone there?", 0) or send(b, 0, b"anyone there?")


def test_the_python_one_step_paths_step_aside_whenever_order_or_kind_needs_the_engine(
        pair) -> None:
    import numpy as np

    a, b = pair
    # A synchronous send, a send to itself, a payload that is not contiguous bytes:
    # not for the one-step path (nothing is written).
    assert a.send_fast(1, 0, 0, b"sync", 0x02) is False
    assert a.send_fast(0, 0, 0, b"self", 0) is False
    assert a.send_fast(1, 0, 0, np.arange(8)[::2], 0) is False
    assert b.endpoint.readable(0) == 0
    # A receive posted earlier on the context comes first: the one-step path waits.
    from shoal.spmd.matching import PostedReceive

    for into in (None, bytearray(32)):  # (with a buffer: the compiled path's own look)
        earlier = PostedReceive(0, 0, 9, None)
        b.post(earlier)
        send(a, 1, b"for the earlier receive", tag=9)
        assert b.receive_fast(0, 0, 9, into, 50_000_000) is None
        b.wait_until(lambda earlier=earlier: earlier.done, lambda: "earlier")
        assert bytes(earlier.message.body) == b"for the earlier receive"
    # Another thread inside the engine: the one-step paths do not wait for it.
    with a._lock:
        assert a.send_fast(1, 0, 0, b"busy", 0) is False
    with b._lock:
        assert b.receive_fast(0, 0, 0, None, 0) is None
        assert b.receive_fast(0, 0, 0, bytearray(8), 0) is None


def test_a_small_message_between_hosts_is_one_call_each_way_when_compiled(pair,
                                                                         record_core) -> None:
    a, b = pair
    link = b.endpoint.links[0]
    if record_core == "python":
        assert link.recv_open is None and a.endpoint.links[1].seal_send is None
        return
    opened = counting(link, "recv_open")
    send(a, 1, b"hello")  # (the first frame of each direction is the record layer's)
    assert recv(b, 0) == b"hello"
    for i in range(20):
        assert a.send_fast(1, 0, 7, bytes([i]) * (i + 1), 0) is True
        frame = b.receive_fast(0, 0, 7, None, 2_000_000_000)
        assert frame is not None and bytes(frame.body) == bytes([i]) * (i + 1)
    assert opened.count(bytes) >= 20
    # A whole frame opened that is not this receive's waits in the inbox.
    a.send_fast(1, 0, 1, b"one", 0)
    assert b.endpoint.wait(0, (), 5_000_000_000, 0)
    before = opened.count(bytes)
    assert b.receive_fast(0, 0, 2, None, 0) is None
    assert opened.count(bytes) == before + 1 and b.endpoint.readable(0) == 48 + 3
    a.send_fast(1, 0, 2, b"two", 0)
    assert recv(b, 0, tag=2) == b"two" and recv(b, 0, tag=1) == b"one"




def test_a_small_message_into_a_buffer_is_decrypted_straight_there_when_compiled(
        pair, record_core) -> None:
    a, b = pair
    link = b.endpoint.links[0]
    if record_core == "python":
        assert link.recv_take is None
        return
    send(a, 1, b"hello")  # (the first frame of each direction is the record layer's)
    assert recv(b, 0) == b"hello"
    taken = counting(link, "recv_take")
    for i in range(20):
        payload = bytes([i]) * i  # the first one empty
        assert a.send_fast(1, 0, 7, payload, 0) is True
        into = bytearray(b"-" * 32)
        frame = b.receive_fast(0, 0, 7 if i % 2 else -1, into, 2_000_000_000)
        assert frame is not None and frame.body is None
        assert (frame.source, frame.tag, frame.ctx, frame.length) == (0, 7, 0, i)
        assert into == payload + b"-" * (32 - i)  # nothing past the message touched
    assert taken.count(True) == 20, repr(taken)
    # Another tag, another context: opened into the inbox (the buffer untouched), where
    # the general path finds it.
    for tag, ctx in ((1, 0), (2, 5)):
        assert a.send_fast(1, ctx, tag, b"vvv", 0) is True
        assert b.endpoint.wait(0, (), 5_000_000_000, 0)
        into = bytearray(b"-" * 32)
        assert b.endpoint.take_match(0, 0, 2, 1 << 14, into) is None
        assert into == b"-" * 32 and taken[-1] is bytes
        assert b.endpoint.readable(0) == 48 + 3
        assert bytes(b.receive(ctx, 0, tag, None, lambda: "recv").body) == b"vvv"
    # A body larger than the buffer: opened as a whole, the buffer untouched (the engine
    # says it would be truncated).
    assert a.send_fast(1, 0, 2, b"w" * 40, 0) is True
    assert b.endpoint.wait(0, (), 5_000_000_000, 0)
    into = bytearray(b"-" * 32)
    frame = b.endpoint.take_match(0, 0, 2, 1 << 14, into)
    assert frame.length == 40 and bytes(frame.body) == b"w" * 40
    assert into == b"-" * 32 and taken[-1] is bytes


def test_a_forged_small_frame_taken_straight_into_a_buffer_fails_the_link(
        record_core) -> None:
    (a, b), _ = proxied_pair(flip=True, after=2000)  # a byte of a data frame, past the handshake
    payload = bytes(range(100))
    got = 0
    try:
        with pytest.raises(TransportError, match="integrity") as caught:
            for _ in range(100):
                in_threads(lambda: send(a, 1, payload, tag=3), lambda: None)
                into = bytearray(100)
                frame = b.receive_fast(0, 0, 3, into, 2_000_000_000)
                if frame is None:  # (the first frames go the record layer's way)
                    frame = b.receive(0, 0, 3, memoryview(into), lambda: "recv")
                assert bytes(into) == payload  # every message before the forged one intact
                got += 1
        assert isinstance(caught.value.__cause__, IntegrityError)
        assert got < 100
    finally:
        close_all([a.endpoint, b.endpoint])
