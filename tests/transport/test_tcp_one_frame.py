"""A message up to a link's ``one_frame`` bytes between hosts: one frame, sealed and sent
in one call, read and decrypted into the receive's buffer in one call (the compiled
record core's seal_send and recv_take); larger ones, and every message where the record
layer is Python's, take the general path, with the same results."""

from __future__ import annotations

import os

import pytest
from transport_helpers import counting

from shoal.security.channel import SEAL_SEND_LIMIT
from shoal.spmd.engine import Engine
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
