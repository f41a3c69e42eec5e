"""A one-part message up to half a ring goes into the shared-memory stream as one whole
frame, written once it fits, never a piece at a time (``Engine._whole``): the reader
then takes it straight into its buffer in one step.  Two ranks' engines over a real
segment, on the compiled rings and on the Python ones."""

from __future__ import annotations

import os

import numpy as np
import pytest
from engine_pair import engine_pair

from shoal.spmd.engine import _ONE_STEP_LOCAL
from shoal.spmd.matching import PostedReceive
from shoal.transport.shm import PyRings

try:
    from shoal.transport._shmcore import Rings as CompiledRings
except ImportError:
    CompiledRings = None

pytestmark = pytest.mark.timeout(60)
KINDS = [pytest.param(PyRings, id="python"),
         pytest.param(CompiledRings, id="compiled", marks=pytest.mark.skipif(
             CompiledRings is None, reason="the compiled rings were not built"))]
RING = 256 * 1024
HEADER = 48
CTX, TAG = 0, 5


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_that_does_not_fit_yet_waits_whole_then_goes_in_one_frame(kind) -> None:
    with engine_pair(kind, ring_bytes=RING) as (a, b):
        assert a._whole == RING // 2 == b.endpoint.whole_frames
        size = 100 * 1024  # two fit in the ring, the third does not
        payloads = [os.urandom(size) for _ in range(3)]
        sends = [a.send(1, CTX, TAG, [p]) for p in payloads]
        assert sends[0].done and sends[1].done and not sends[2].done
        # Nothing of the third is in the stream: it waits for room for all of it.
        assert b.endpoint.readable(0) == 2 * (HEADER + size)
        for i, payload in enumerate(payloads):
            buffer = bytearray(size)
            receive = PostedReceive(CTX, 0, TAG, memoryview(buffer))
            b.post(receive)
            for _ in range(1000):  # the reader frees room; the writer's progress fills it
                if receive.done:
                    break
                a.progress()
                b.progress()
            assert receive.done and buffer == payload, i
            if i == 0:
                # Once there is room the third goes in, whole (the reader may have read
                # the second on meanwhile).
                a.progress()
                assert sends[2].done
                assert b.endpoint.readable(0) in (HEADER + size, 2 * (HEADER + size))


@pytest.mark.parametrize("kind", KINDS)
def test_larger_and_many_part_messages_still_go_a_piece_at_a_time(kind) -> None:
    with engine_pair(kind, ring_bytes=RING) as (a, b):
        size = 100 * 1024
        first = [os.urandom(size) for _ in range(2)]
        for payload in first:
            assert a.send(1, CTX, TAG, [payload]).done
        big = os.urandom(RING // 2 + 1)  # over half a ring: written as room frees up
        out = a.send(1, CTX, TAG, [big])
        assert not out.done and b.endpoint.readable(0) > 2 * (HEADER + size)
        parts = [np.arange(20_000, dtype=np.uint8).data, os.urandom(50_000)]
        second = a.send(1, CTX, TAG + 1, parts)  # two parts: never one whole frame
        receives = [PostedReceive(CTX, 0, TAG, None) for _ in range(3)]
        receives.append(PostedReceive(CTX, 0, TAG + 1, None))
        for receive in receives:
            b.post(receive)
        for _ in range(10_000):
            if all(r.done for r in receives) and out.done and second.done:
                break
            a.progress()
            b.progress()
        assert [bytes(r.message.body) for r in receives[:3]] == [*first, big]
        assert receives[3].done and receives[3].message.nparts == 2


def test_whole_frames_are_at_most_what_the_one_step_paths_take() -> None:
    with engine_pair(PyRings, ring_bytes=4 * 1024 * 1024) as (a, _):
        assert a._whole == min(_ONE_STEP_LOCAL, a._rendezvous - 1)
