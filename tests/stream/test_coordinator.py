"""The coordinator in this process, with real local volunteer processes."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from stream_helpers import module

from shoal.stream import protocol
from shoal.stream.coordinator import Coordinator, Job
from shoal.stream.ledger import Outcome
from shoal.stream.local import LocalPool
from shoal.stream.sinks import LinesSink
from shoal.stream.sources import ValuesSource


class BrokenSink(LinesSink):
    def emit(self, outcome: Outcome) -> None:
        raise RuntimeError("a bug in the output path")

    def emit_run(self, start: int, values: list[Any]) -> None:
        raise RuntimeError("a bug in the output path")


async def run(sink: Any, values: list[Any], *, workers: int = 1, batch: int = 1) -> int:
    job = Job("square", "", "square", batch=batch, window=64)
    coordinator = Coordinator(job, ValuesSource(values), sink)
    pool = LocalPool(coordinator, module("square"), capacity=batch)
    await pool.start(workers)
    try:
        return await asyncio.wait_for(coordinator.run(), 60)
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pool.close)


def test_the_coordinator_prints_a_stream_in_order_with_local_processes():
    out = io.BytesIO()
    assert asyncio.run(run(LinesSink(out), list(range(50)), workers=2, batch=3)) == 0
    assert out.getvalue().decode().split() == [str(i * i) for i in range(50)]


def test_an_internal_error_stops_the_stream_loudly_instead_of_hanging(
        capsys: pytest.CaptureFixture[str]):
    status = asyncio.run(run(BrokenSink(io.BytesIO()), [1, 2, 3]))
    assert status == 1
    err = capsys.readouterr().err
    assert "internal error, the stream stops" in err and "a bug in the output path" in err


class RecordingLink:
    """A volunteer's link that keeps what the coordinator sends (the messages are the test)."""

    heartbeats = False

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def send_many(self, messages: list[dict[str, Any]]) -> None:
        self.sent += messages

    def close(self) -> None:
        pass

    def take(self, kind: str) -> list[dict[str, Any]]:
        mine = [m for m in self.sent if m["type"] == kind]
        self.sent = [m for m in self.sent if m["type"] != kind]
        return mine


def test_a_local_process_is_lent_two_batches_at_first_in_one_message():
    async def scenario() -> None:
        out = io.BytesIO()
        job = Job("square", "", "square", batch=4, window=64)
        coordinator = Coordinator(job, ValuesSource(range(20)), LinesSink(out))
        link = RecordingLink()
        member = coordinator.hello(link, protocol.hello("process", "p", 4, runs=True))
        assert member is not None and member.capacity == 2 * 4
        [welcome] = link.take("welcome")
        assert welcome["batch"] == 4
        lent = link.take("items")
        assert [(m["start"], m["values"]) for m in lent] == [(0, list(range(8)))]
        coordinator.receive(link, [protocol.results(0, [0, 1, 4, 9], 0.0)])
        assert [(m["start"], len(m["values"])) for m in link.take("items")] == [(8, 4)]
        assert coordinator.ledger.holding(link) == 8
        await asyncio.sleep(0)   # the coordinator writes released results once per loop turn
        assert out.getvalue() == b"0\n1\n4\n9\n"

    asyncio.run(scenario())


def test_a_local_process_with_quick_items_is_lent_further_ahead():
    async def scenario() -> None:
        job = Job("square", "", "square", batch=2, window=400)
        coordinator = Coordinator(job, ValuesSource(range(100_000)), LinesSink(io.BytesIO()))
        link = RecordingLink()
        member = coordinator.hello(link, protocol.hello("process", "p", 2, runs=True))
        assert member is not None
        sizes = []
        for _ in range(30):   # results as fast as this loop: items of microseconds
            for message in link.take("items"):
                sizes.append(len(message["values"]))
                coordinator.receive(link, [protocol.results(
                    message["start"], message["values"], 0.0)])
        assert sizes[0] == 4   # two batches, at first
        # Then what it computes in a few milliseconds, up to 3/4 of the window.
        assert member.capacity == 300 and max(sizes) > 100

    asyncio.run(scenario())


def test_a_volunteer_that_does_not_read_runs_gets_items_one_by_one_and_holds_one_batch():
    async def scenario() -> None:
        job = Job("square", "", "square", batch=3, window=64)
        coordinator = Coordinator(job, ValuesSource(range(10)), LinesSink(io.BytesIO()))
        link = RecordingLink()
        coordinator.hello(link, protocol.hello("browser", "tab", 3))
        [lent] = link.take("items")
        assert lent["items"] == [{"id": 0, "value": 0}, {"id": 1, "value": 1},
                                 {"id": 2, "value": 2}]
        coordinator.receive(link, [protocol.result_ok(0, 0, 0.0)])
        assert link.take("items") == []    # refilled once half its slots are free, as before
        assert coordinator.ledger.holding(link) == 2

    asyncio.run(scenario())
