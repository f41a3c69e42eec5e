"""The coordinator in this process, with real local volunteer processes."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from stream_helpers import module

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
