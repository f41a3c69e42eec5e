"""The shared-memory rings, doorbells and status slots, in one process."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shoal.transport.shm import ShmEndpoint, ShmJob, default_ring_bytes

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def pair():
    job = ShmJob.create(2, ring_bytes=4096)
    endpoints = [
        ShmEndpoint(rank, 2, os.dup(job._fd), os.dup(job._doorbells[rank][0]),
                    [os.dup(w) for _, w in job._doorbells])
        for rank in range(2)
    ]
    yield job, endpoints
    for endpoint in endpoints:
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
