"""A large message between hosts: its body is decrypted straight into the receive's
buffer, frame by frame as the frames arrive (``receive_into``), and never past it."""

from __future__ import annotations

import contextlib
import os
import time

import pytest
from transport_helpers import close_all, in_threads, proxied_pair, recv, send

from shoal.errors import PeerLostError, TransportError
from shoal.security.channel import OVERHEAD
from shoal.spmd import waiting
from shoal.spmd.engine import Engine
from shoal.transport.tcp import SEND_STEP

# Every test on both record layers (the record_core fixture, conftest.py).
pytestmark = [pytest.mark.timeout(30), pytest.mark.usefixtures("record_core")]


def _fill(a: Engine, b: Engine, target: memoryview, size: int) -> None:
    """Fill ``target[:size]`` with the next bytes from rank 0 on rank 1, through
    receive_into() (a first call with this target may have made it the sink already)."""
    got = 0
    deadline = time.monotonic() + 10
    while got < size:
        now = b.endpoint.receive_into(0, target, got, size)
        assert got <= now <= size
        if now == got:
            assert time.monotonic() < deadline, "the frames did not arrive"
            a.endpoint.readable(1)  # a's queued ciphertext goes out
            b.endpoint.wait(0, (), 1_000_000, 0)
        got = now


def _receive_body(a: Engine, b: Engine, size: int) -> bytes:
    """The next ``size`` bytes from rank 0 on rank 1, through receive_into()."""
    target = memoryview(bytearray(size))
    _fill(a, b, target, size)
    return bytes(target)


def test_a_large_body_is_decrypted_straight_into_the_receive_buffer(pair) -> None:
    a, b = pair
    taken = []
    take = b.endpoint._take

    def counting(n: int) -> memoryview:  # a pooled payload: decrypted there, copied later
        taken.append(n)
        return take(n)

    b.endpoint._take = counting
    size = 1024 * 1024 + 12345  # nine frames
    body = os.urandom(size)
    target = memoryview(bytearray(size + 100))
    # The body's place is known before its first byte comes: every frame is opened there,
    # by whichever read takes it in (here the spin's polls and receive_into's own reads).
    assert b.endpoint.receive_into(0, target, 0, size) == 0
    assert a.endpoint.write(1, body) == size
    assert a.endpoint.write(1, b"after") == 5
    _fill(a, b, target, size)
    assert bytes(target[:size]) == body and bytes(target[size:]) == bytes(100)
    assert taken == []
    # What follows the body in the stream stays whole, in order, for the next reader.
    deadline = time.monotonic() + 10
    while b.endpoint.readable(0) < 5:
        assert time.monotonic() < deadline, "the frames did not arrive"
        b.endpoint.wait(0, (), 1_000_000, 0)
    assert b.endpoint.read_bytes(0, 5) == b"after" and b.endpoint.links[0].sink is None


def test_a_large_message_lands_whole_in_a_larger_buffer_and_the_next_one_follows(pair) -> None:
    a, b = pair
    message = os.urandom(1024 * 1024 + 12345)
    target = bytearray(len(message) + 100)

    def receive() -> None:
        got = b.receive(0, 0, 3, memoryview(target), lambda: "recv")
        assert got.length == len(message)

    def sender() -> None:
        send(a, 1, message, tag=3)
        send(a, 1, message[:70_000], tag=4)
        send(a, 1, b"after", tag=5)

    in_threads(sender, receive)
    assert target[:len(message)] == message and target[len(message):] == bytes(100)
    assert recv(b, 0, tag=4) == message[:70_000] and recv(b, 0, tag=5) == b"after"


def test_a_body_smaller_than_the_frames_around_it_takes_only_its_own_bytes(pair) -> None:
    # receive_into() with room for less than the next frame: that frame is opened into the
    # inbox, the room filled from there, and the rest stays for the next reader.
    a, b = pair
    first, second = os.urandom(200_000), os.urandom(150_000)
    assert a.endpoint.write(1, first) == len(first)
    assert a.endpoint.write(1, second) == len(second)
    assert _receive_body(a, b, 150_000) == first[:150_000]
    assert _receive_body(a, b, 200_000) == first[150_000:] + second[:150_000]
    assert b.endpoint.readable(0) == 0 and b.endpoint.links[0].sink is None


def test_a_forged_frame_inside_a_body_read_in_place_is_never_counted_as_received() -> None:
    flip_at = 2000 + 300_000  # past the handshake, inside the tenth frame of SEND_STEP
    (a, b), _ = proxied_pair(flip=True, after=flip_at)
    size = 1024 * 1024
    body = os.urandom(size)
    target = memoryview(bytearray(size))
    try:
        assert b.endpoint.receive_into(0, target, 0, size) == 0  # in place from the start
        assert a.endpoint.write(1, body) == size
        got = 0
        deadline = time.monotonic() + 10
        with pytest.raises(TransportError, match="integrity"):
            while True:
                assert time.monotonic() < deadline, "the link did not fail"
                with contextlib.suppress(PeerLostError):  # (b hangs up once it failed)
                    a.endpoint.readable(1)  # a's queued ciphertext goes out
                b.endpoint.wait(0, (), 1_000_000, 0)
                got = b.endpoint.receive_into(0, target, got, size)
        # Counted as received: the frames before the forged one, which was decrypted
        # into the same buffer, but failed, and is not counted.
        assert got == 300_000 // (SEND_STEP + OVERHEAD) * SEND_STEP
        assert bytes(target[:got]) == body[:got]
    finally:
        close_all([a.endpoint, b.endpoint])


@pytest.mark.parametrize("spin", [True, False])
def test_a_blocking_receive_waiting_for_a_large_message_from_another_host_posts_first(
        pair, spin, monkeypatch) -> None:
    # Its body then streams straight into the receive's buffer; read in by the waiting
    # loop before the receive was posted, it would land in a new buffer and be copied.
    # The receive waits for it spinning, or in the sleeps of its fast path, made long
    # here so that the message comes during them.
    a, b = pair
    if spin:
        b._spinning.seconds = 10.0
    else:
        b._spinning.seconds = 0.0
        monkeypatch.setattr(waiting, "_DIRECT_SLEEPS", 1000)
    places = []
    start_body = b._start_body

    def recording(message):
        reading = start_body(message)
        places.append(reading.receive is not None and reading.target is reading.receive.buffer)
        return reading

    b._start_body = recording
    message = os.urandom(1024 * 1024)
    target = memoryview(bytearray(len(message)))

    def sender() -> None:
        time.sleep(0.2)  # the receiver is waiting (spinning, or asleep) by now
        send(a, 1, message, tag=3)

    in_threads(sender, lambda: b.receive(0, 0, 3, target, lambda: "recv"))
    assert bytes(target) == message
    assert places == [True]
