"""The shared-memory rings, doorbells and status slots, in one process."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shoal.transport.shm import PyRings, ShmEndpoint, ShmJob, default_ring_bytes

try:
    from shoal.transport._shmcore import Rings as CompiledRings
except ImportError:  # the extension was not built: only the Python rings are tested
    CompiledRings = None

pytestmark = pytest.mark.timeout(20)

# Every ring test runs on both implementations; a test may pair one of each (the two
# ranks of a job always use the same one, but the bytes in memory must be the same).
KINDS = [
    pytest.param(PyRings, id="python"),
    pytest.param(CompiledRings, id="compiled", marks=pytest.mark.skipif(
        CompiledRings is None, reason="the compiled rings were not built (no C compiler?)")),
]


def endpoints(job: ShmJob, kinds: list[type]) -> list[ShmEndpoint]:
    return [
        ShmEndpoint(rank, job.size, os.dup(job._fd), os.dup(job._doorbells[rank][0]),
                    [os.dup(w) for _, w in job._doorbells], rings=kind)
        for rank, kind in enumerate(kinds)
    ]


@pytest.fixture(params=KINDS)
def pair(request):
    job = ShmJob.create(2, ring_bytes=4096)
    ends = endpoints(job, [request.param, request.param])
    yield job, ends
    for endpoint in ends:
        endpoint.close()
    job.close()


def test_bytes_written_come_out_in_order_across_the_ring_boundary(pair) -> None:
    _, (a, b) = pair
    sent = bytearray()
    received = bytearray()
    for round_ in range(10):
        chunk = bytes([round_]) * 3000
        assert a.write(1, chunk) == 3000
        sent += chunk
        assert b.readable(0) == 3000
        received += b.read_bytes(0, 1000)
        target = bytearray(2000)
        b.read_into(0, memoryview(target), 2000)
        received += target
    assert received == sent


def test_a_full_ring_takes_only_what_fits(pair) -> None:
    _, (a, b) = pair
    assert a.write(1, b"x" * 10_000) == 4096
    assert a.write(1, b"y") == 0
    b.read_bytes(0, 96)
    assert a.write(1, b"y" * 200) == 96


def test_a_sleeping_rank_is_woken_by_a_write(pair) -> None:
    _, (a, b) = pair
    b.set_sleeping(True)
    threading.Timer(0.05, lambda: a.write(1, b"wake")).start()
    started = time.monotonic()
    b.sleep(5.0)
    assert time.monotonic() - started < 2.0
    assert b.readable(0) == 4


def test_the_launcher_sees_which_call_a_rank_is_blocked_in(pair) -> None:
    job, (a, _) = pair
    assert job.blocked_calls() == {}
    a.set_status("recv(source=1, tag=5)")
    calls = job.blocked_calls()
    assert calls[0][0] == "recv(source=1, tag=5)" and calls[0][1] >= 0
    a.set_status("")
    assert job.blocked_calls() == {}


def test_a_job_leaves_no_named_segment_behind() -> None:
    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    job = ShmJob.create(3)
    job.close()
    after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert after == before


def test_rings_shrink_as_the_job_grows_but_stay_usable() -> None:
    assert default_ring_bytes(2) >= default_ring_bytes(16) >= default_ring_bytes(64) >= 64 * 1024
    assert default_ring_bytes(64) % 4096 == 0


@pytest.mark.parametrize("writer,reader", [
    pytest.param(PyRings, CompiledRings, id="python-to-compiled"),
    pytest.param(CompiledRings, PyRings, id="compiled-to-python"),
])
def test_both_ring_implementations_write_and_read_the_same_frames(writer, reader) -> None:
    if CompiledRings is None:
        pytest.skip("the compiled rings were not built")
    from shoal.wire.header import FIELDS, HEADER, HEADER_SIZE, LENGTH_OFFSET

    job = ShmJob.create(2, ring_bytes=4096)
    a, b = endpoints(job, [writer, reader])
    try:
        # Enough frames of odd sizes that headers and bodies wrap around the ring's end.
        for round_ in range(300):
            body = bytes([round_ % 251]) * (round_ * 7 % 300)
            assert a.send_frame(1, 1, 3, 1, -round_, 2 * round_, round_ + 1, body, 1 << 20)
            way = round_ % 3
            if way == 0:  # the raw frame
                frame = b.take_frame(0, HEADER_SIZE, LENGTH_OFFSET, 1 << 20)
                kind, flags, nparts, tag, ctx, seq, stamp, length = FIELDS.unpack_from(frame)
                assert HEADER.unpack_from(frame)[3] == 0  # the reserved word
                got = bytes(memoryview(frame)[HEADER_SIZE:])
            elif way == 1:  # parsed
                message = b.take_message(0, 1 << 20)
                kind, flags, nparts, tag, ctx, seq, stamp, length = (
                    message.kind, message.flags, message.nparts, message.tag, message.ctx,
                    message.seq, message.stamp, message.length)
                assert message.source == 0 and message.remote is None
                got = bytes(message.body)
            else:  # matched, straight into a buffer
                assert b.take_match(0, 2 * round_ + 2, -1, 1 << 20, None) is None  # wrong ctx
                assert b.take_match(0, 2 * round_, 12345, 1 << 20, None) is None  # wrong tag
                target = bytearray(400)
                message = b.take_match(0, 2 * round_, -round_, 1 << 20, target)
                kind, flags, nparts, tag, ctx, seq, stamp, length = (
                    message.kind, message.flags, message.nparts, message.tag, message.ctx,
                    message.seq, message.stamp, message.length)
                assert message.body is None
                got = bytes(target[:length])
            assert (kind, flags, nparts, tag, ctx, seq, length) == (
                1, 3, 1, -round_, 2 * round_, round_ + 1, len(body))
            assert got == body
            assert stamp > 0
    finally:
        a.close()
        b.close()
        job.close()


def test_a_frame_that_does_not_fit_is_not_written_at_all(pair) -> None:
    _, (a, b) = pair
    assert a.write(1, b"x" * 4000) == 4000
    assert not a.send_frame(1, 1, 0, 1, 0, 0, 1, b"y" * 100, 1000)  # 148 bytes, 96 free
    assert b.readable(0) == 4000
    b.read_bytes(0, 4000)
    assert not a.send_frame(1, 1, 0, 1, 5, 0, 1, b"y" * 100, 99)  # over the limit
    assert b.readable(0) == 0
    assert a.send_frame(1, 1, 0, 1, 5, 0, 1, b"y" * 100, 100)
    assert b.take_message(0, 50) is None  # its body is over the limit: left in place
    message = b.take_message(0, 1000)
    assert message is not None and message.tag == 5 and bytes(message.body) == b"y" * 100


def test_a_receive_buffer_too_small_or_read_only(pair) -> None:
    _, (a, b) = pair
    assert a.send_frame(1, 1, 0, 1, 5, 0, 1, b"z" * 100, 1000)
    with pytest.raises(BufferError):
        b.take_match(0, 0, 5, 1000, b"read-only bytes")
    assert b.readable(0) == 148  # nothing was taken
    message = b.take_match(0, 0, 5, 1000, bytearray(10))
    assert bytes(message.body) == b"z" * 100  # too long for the buffer: the caller truncates


def test_payloads_may_be_any_contiguous_buffer_but_not_a_strided_one(pair) -> None:
    import numpy as np

    _, (a, b) = pair
    array = np.arange(6, dtype=np.int32)
    assert a.send_frame(1, 1, 0, 1, 0, 0, 1, array, 1000)
    assert bytes(b.take_message(0, 1000).body) == array.tobytes()
    with pytest.raises((BufferError, ValueError)):  # numpy says ValueError
        a.send_frame(1, 1, 0, 1, 0, 0, 1, array[::2], 1000)
    assert b.readable(0) == 0


def test_waiting_returns_when_data_arrives_or_space_frees(pair) -> None:
    _, (a, b) = pair
    assert not b.wait(0, None, 1_000_000, 0)  # nothing for a millisecond
    threading.Timer(0.05, lambda: a.write(1, b"data")).start()
    assert b.wait(0, None, 5_000_000_000, 0)
    assert b.readable(0) == 4
    assert a.write(1, b"z" * 5000) == 4092  # full now
    threading.Timer(0.05, lambda: b.read_bytes(0, 100)).start()
    assert a.wait(-1, [1], 5_000_000_000, 1)  # space towards rank 1


def test_a_sleeping_rank_sees_data_that_came_before_it_slept(pair) -> None:
    _, (a, b) = pair
    a.write(1, b"early")
    started = time.monotonic()
    b.sleep(30.0)  # returns at once: the data is there (the pytest timeout is 20 s)
    assert time.monotonic() - started < 10.0 and b.readable(0) == 5


def test_the_python_rings_are_chosen_when_asked_or_when_the_extension_is_missing(
        monkeypatch) -> None:
    import sys

    from shoal.transport.shm import rings_class

    monkeypatch.setenv("SHOAL_PURE_PYTHON", "1")
    assert rings_class() is PyRings
    monkeypatch.setenv("SHOAL_PURE_PYTHON", "0")
    assert rings_class() is (CompiledRings or PyRings)
    monkeypatch.delenv("SHOAL_PURE_PYTHON")
    monkeypatch.setitem(sys.modules, "shoal.transport._shmcore", None)  # import fails
    assert rings_class() is PyRings
    job = ShmJob.create(2, ring_bytes=4096)
    a, b = endpoints(job, [rings_class(), rings_class()])
    try:
        assert not a.compiled and not hasattr(a, "send_fast")
        assert a.send_frame(1, 1, 0, 1, 3, 0, 1, b"still works", 100)
        assert bytes(b.take_message(0, 100).body) == b"still works"
    finally:
        a.close()
        b.close()
        job.close()
