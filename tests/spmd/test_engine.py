"""The progress engine over in-process streams: framing, partial writes, acks, no deadlock."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from shoal.spmd import spinning
from shoal.spmd.engine import Engine
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG, PostedReceive
from shoal.spmd.objcodec import PICKLE
from shoal.spmd.spinning import Spin
from shoal.transport.inproc import InprocHub
from shoal.wire.header import PICKLED, SYNC, split_parts

pytestmark = pytest.mark.timeout(20)


def engines(size: int, capacity: int) -> list[Engine]:
    hub = InprocHub(size, capacity)
    return [Engine(rank, size, hub.endpoint(rank)) for rank in range(size)]


def drive(group: list[Engine], done, limit: int = 100_000) -> None:
    for _ in range(limit):
        if done():
            return
        for engine in group:
            engine.progress()
    raise AssertionError("no progress")


def decode(receive: PostedReceive):
    message = receive.message
    return PICKLE.decode(split_parts(memoryview(message.body), message.nparts))


def test_a_message_larger_than_the_stream_arrives_whole_in_pieces() -> None:
    a, b = engines(2, capacity=100)
    payload = bytes(range(256)) * 40
    receive = PostedReceive(0, 0, 3)
    b.post(receive)
    outgoing = a.send(1, 0, 3, [payload])
    drive([a, b], lambda: receive.done and outgoing.done)
    assert receive.message.body == payload


def test_a_buffer_receive_is_filled_in_place_and_truncation_is_an_error() -> None:
    a, b = engines(2, capacity=64)
    target = bytearray(1000)
    receive = PostedReceive(0, 0, 0, memoryview(target))
    b.post(receive)
    a.send(1, 0, 0, [b"\x07" * 1000])
    drive([a, b], lambda: receive.done)
    assert target == b"\x07" * 1000 and receive.error is None
    small = PostedReceive(0, 0, 0, memoryview(bytearray(10)))
    b.post(small)
    a.send(1, 0, 0, [b"\x01" * 11])
    drive([a, b], lambda: small.done)
    assert "truncated" in str(small.error)


def test_out_of_band_buffers_travel_as_separate_aligned_parts() -> None:
    np = pytest.importorskip("numpy")
    a, b = engines(2, capacity=4096)
    array = np.arange(10_001, dtype="f8")
    parts = PICKLE.encode({"x": array, "note": "hi"})
    assert len(parts) == 2  # the array's memory was not copied into the pickle
    receive = PostedReceive(0, ANY_SOURCE, ANY_TAG)
    b.post(receive)
    a.send(1, 0, 0, parts, PICKLED)
    drive([a, b], lambda: receive.done)
    value = decode(receive)
    assert value["note"] == "hi" and (value["x"] == array).all()
    assert value["x"].ctypes.data % 8 == 0


def test_a_synchronous_send_completes_only_once_the_receiver_matched_it() -> None:
    a, b = engines(2, capacity=1 << 16)
    outgoing = a.send(1, 0, 0, [pickle.dumps("x")], PICKLED | SYNC)
    for _ in range(50):
        a.progress()
        b.progress()
    assert not outgoing.done
    receive = PostedReceive(0, 0, 0)
    b.post(receive)
    drive([a, b], lambda: outgoing.done)
    assert receive.done


def test_two_ranks_sending_each_other_large_messages_both_finish() -> None:
    a, b = engines(2, capacity=256)
    big = b"z" * 100_000
    out_a, out_b = a.send(1, 0, 1, [big]), b.send(0, 0, 1, [big])
    in_a, in_b = PostedReceive(0, 1, 1), PostedReceive(0, 0, 1)
    a.post(in_a)
    b.post(in_b)
    drive([a, b], lambda: out_a.done and out_b.done and in_a.done and in_b.done)
    assert in_a.message.body == big and in_b.message.body == big


def test_many_queued_sends_arrive_in_order() -> None:
    a, b = engines(2, capacity=300)
    for i in range(200):
        a.send(1, 0, 4, [pickle.dumps(i)], PICKLED)
    got = []
    for _ in range(200):
        receive = PostedReceive(0, 0, 4)
        b.post(receive)
        drive([a, b], lambda receive=receive: receive.done)
        got.append(decode(receive))
    assert got == list(range(200))


def test_a_rank_can_send_to_itself() -> None:
    (alone,) = [Engine(0, 1, None)]
    alone.send(0, 0, 2, [pickle.dumps("me")], PICKLED)
    receive = PostedReceive(0, 0, 2)
    alone.post(receive)
    assert receive.done and decode(receive) == "me"


def test_waiting_alone_for_a_message_nobody_can_send_is_an_error_not_a_hang() -> None:
    # In a process of its own: with any other thread alive (one this test process may
    # hold), that thread could still send, and the wait goes on as MPI's would.
    program = textwrap.dedent("""
        from shoal.spmd.engine import Engine
        from shoal.spmd.matching import PostedReceive
        alone = Engine(0, 1, None)
        receive = PostedReceive(0, 0, 0)
        alone.post(receive)
        try:
            alone.wait_until(lambda: receive.done, lambda: "recv(source=0)")
        except Exception as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deadlock: rank 0 of a 1-rank job would wait forever in "
                                  "recv(source=0)"), done.stdout


def test_alone_a_thread_may_wait_for_what_another_thread_sends_to_this_rank() -> None:
    alone = Engine(0, 1, None)
    receive = PostedReceive(0, 0, 5)
    alone.post(receive)
    def later() -> None:
        time.sleep(0.05)  # while the main thread waits
        alone.send(0, 0, 5, [pickle.dumps("from the other thread")], PICKLED)

    sender = threading.Thread(target=later)
    sender.start()
    assert not receive.done
    alone.wait_until(lambda: receive.done, lambda: "recv(source=0)")
    sender.join(10)
    assert decode(receive) == "from the other thread"


def test_the_spin_shrinks_when_it_finds_nothing_and_grows_back_when_it_does() -> None:
    """Adaptive spinning: on a busy machine a spin that ends asleep halves the next one (to
    a floor, never to nothing), and spins that find their message grow it back, never
    past the configured length; a configured 0 (SHOAL_SPIN_US=0) stays 0."""
    spin = Spin(0.002, 31)
    assert spin.seconds == spin.most == pytest.approx(0.002)
    assert spin.fast_ns == 100_000  # the one-step receive spins at most 100 us
    for _ in range(40):
        spin.spun(False)
    floor = spin.seconds
    assert 0 < floor <= 10e-6 and spin.fast_ns == int(floor * 1e9)
    spin.spun(True)
    assert floor < spin.seconds < 0.002
    for _ in range(40):
        spin.spun(True)
    assert spin.seconds == pytest.approx(0.002)
    still = Spin(0.0, 31)
    still.spun(False)
    still.spun(True)
    assert still.seconds == 0 and still.fast_ns == 0


def test_a_near_miss_grows_the_spin_only_when_no_rank_waits_for_this_core() -> None:
    """With no more ranks than cores, a wait that ended soon after its spin gave up (the
    peer was descheduled by other programs) grows the spin past the configured length, to
    ten times it; a spin that then finds its message keeps it; a long wait halves it.
    With more ranks than cores (the peer may need this core) every wait that slept halves
    the spin, near miss or not, and the one-step receive never spins."""
    spin = Spin(0.002, 31)
    spin.slept(0.003)  # within four spins of 2 ms
    assert spin.seconds == pytest.approx(0.004)
    for _ in range(10):
        spin.slept(spin.seconds * 2)
    assert spin.seconds == pytest.approx(0.02)
    spin.spun(True)
    assert spin.seconds == pytest.approx(0.02)
    spin.slept(1.0)  # the peer was busy for a second: spinning would not have paid
    assert spin.seconds == pytest.approx(0.01)
    crowded = Spin(0.002, 0)
    assert crowded.yield_rounds == 1 and crowded.fast_ns == 0
    crowded.slept(0.003)
    assert crowded.seconds == pytest.approx(0.001) and crowded.fast_ns == 0


def test_where_a_spin_starts_comes_from_the_environment_the_transport_and_the_cores(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOAL_SPIN_US", raising=False)
    assert spinning.configured(None) == spinning.DEFAULT_SECONDS
    assert spinning.configured(0.0) == 0.0  # a transport that says not to spin
    monkeypatch.setenv("SHOAL_SPIN_US", "250")
    assert spinning.configured(0.0) == pytest.approx(250e-6)  # the user's word wins
    cores = len(os.sched_getaffinity(0))
    assert spinning.yield_mask(cores) == 31 and spinning.yield_mask(cores + 1) == 0
    # The engine wires it: a 1-rank engine has its one core, a crowded one gives way.
    monkeypatch.setenv("SHOAL_SPIN_US", "2000")
    engine = Engine(0, 1, None)
    assert engine._spinning.seconds == pytest.approx(0.002)
    assert engine.fast_spin_ns == 100_000
    for _ in range(5):
        engine._slept(1.0)  # 2 ms halved five times: 62.5 us
    assert engine.fast_spin_ns == engine._spinning.fast_ns == 62_500
    crowded = Engine(0, 4 * (os.cpu_count() or 1) + 4, None)
    assert crowded._spinning.yield_mask == 0 and crowded.fast_spin_ns == 0


def test_a_large_body_is_numpys_unzeroed_memory_where_numpy_is_there_else_a_bytearray(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.spmd import singlecopy

    body = singlecopy.unzeroed(1 << 20)
    assert isinstance(body, memoryview) and body.nbytes == 1 << 20 and not body.readonly
    body[:4] = b"abcd"
    assert bytes(body[:4]) == b"abcd"
    monkeypatch.setattr(singlecopy, "_numpy", False)  # as if numpy were not installed
    fallback = singlecopy.unzeroed(10)
    assert type(fallback) is bytearray and fallback == bytearray(10)
