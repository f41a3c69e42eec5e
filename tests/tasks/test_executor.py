"""shoal.Executor on the embedded local cluster: concurrent.futures semantics."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import time

import psutil
import pytest
import task_helpers as helpers

from shoal.tasks import Executor, RemoteTraceback


def test_map_returns_results_in_the_order_of_the_inputs(executor):
    assert list(executor.map(helpers.add, range(200), range(200))) == [2 * i for i in range(200)]


def test_lambdas_and_closures_travel_by_value(executor):
    offset = 7
    assert list(executor.map(lambda x: x + offset, [1, 2, 3])) == [8, 9, 10]


def test_chunked_map_returns_every_item_in_order(executor):
    items = list(range(1003))
    assert list(executor.map(helpers.square, items, chunksize=50)) == [x * x for x in items]


def test_a_chunk_that_raises_yields_the_items_before_it_then_raises(executor):
    results = executor.map(helpers.fail_on, range(10), [5] * 10, chunksize=4)
    got = []
    with pytest.raises(ValueError, match="bad item 5"):
        for value in results:
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


def test_map_raises_the_first_exception_in_order_with_the_remote_traceback(executor):
    results = executor.map(helpers.fail_on, range(6), [3] * 6)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError) as info:
        next(results)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_on" in cause.remote_traceback and cause.where.startswith("local/")


def test_buffersize_reads_the_input_lazily_and_bounds_what_is_submitted(executor):
    pulled = []

    def source():
        for i in range(20):
            pulled.append(i)
            yield i

    results = executor.map(helpers.square, source(), buffersize=3)
    assert len(pulled) == 3
    got = [next(results) for _ in range(5)]
    assert got == [0, 1, 4, 9, 16] and len(pulled) <= 5 + 3
    assert list(results) == [x * x for x in range(5, 20)]


def test_a_buffered_map_refills_in_bursts_and_never_holds_more_than_buffersize(executor):
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield i

    yielded = 0
    for value in executor.map(helpers.square, source(), buffersize=100, unordered=True):
        yielded += 1
        assert len(pulled) - yielded <= 100
        assert value in range(0, 1000 * 1000)
    assert yielded == 1000


def test_buffersize_must_be_positive(executor):
    with pytest.raises(ValueError, match="buffersize"):
        executor.map(helpers.square, [1], buffersize=0)


def test_unordered_map_yields_every_result_as_it_finishes(executor):
    delays = [1.5, 0.0, 0.0, 0.0]
    got = list(executor.map(helpers.sleep_then, delays, range(4), unordered=True))
    assert sorted(got) == [0, 1, 2, 3] and got[-1] == 0


def test_map_timeout_raises_timeout_error_and_cancels_the_rest():
    # Its own cluster: cancelling running tasks kills (and replaces) their processes.
    with Executor(workers=2) as ex:
        results = ex.map(helpers.sleep_then, [30.0, 30.0, 30.0], timeout=0.5)
        with pytest.raises(cf.TimeoutError):  # the builtin TimeoutError only from 3.11
            next(results)
        results.close()
        assert ex.submit(helpers.square, 4).result(timeout=30) == 16


def test_futures_work_with_callbacks_as_completed_and_wait(executor):
    seen = []
    futures = [executor.submit(helpers.square, i) for i in range(20)]
    futures[0].add_done_callback(lambda f: seen.append(f.result()))
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=30)) == sorted(
        i * i for i in range(20))
    done, not_done = cf.wait(futures, timeout=30)
    assert len(done) == 20 and not not_done and seen == [0]
    assert isinstance(futures[0], cf.Future) and futures[0].task_id.endswith(":" + str(
        int(futures[0].task_id.rsplit(":", 1)[1])))


def test_a_queued_task_can_be_cancelled(executor):
    blockers = [executor.submit(helpers.sleep_then, 0.5) for _ in range(6)]
    queued = executor.submit(helpers.square, 3)
    assert queued.cancel() and queued.cancelled()
    with pytest.raises(cf.CancelledError):
        queued.result()
    assert [b.result(timeout=30) for b in blockers] == [None] * 6


def test_asubmit_and_amap_serve_asyncio_code(executor):
    async def main():
        one = await executor.asubmit(helpers.add, 2, 3)
        many = [x async for x in executor.amap(helpers.square, range(5))]
        chunked = [x async for x in executor.amap(helpers.square, range(7), chunksize=3)]
        return one, many, chunked

    assert asyncio.run(main()) == (5, [0, 1, 4, 9, 16], [x * x for x in range(7)])


def test_status_lists_the_local_workers(executor):
    status = executor.status()
    assert status["scheduler"] == "pull"
    assert len(status["agents"]) == 1 and status["agents"][0]["slots"] == 2


def test_shutdown_stops_the_local_cluster_and_every_worker_process():
    ex = Executor(workers=2)
    pids = []
    deadline = time.monotonic() + 20
    while len(pids) < 2 and time.monotonic() < deadline:
        pids = ex.status()["agents"][0]["pids"]
        time.sleep(0.02)
    assert len(pids) == 2
    assert ex.submit(os.getpid).result(timeout=30) in pids
    ex.shutdown()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status()
                != psutil.STATUS_ZOMBIE]
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(helpers.square, 1)


def test_shutdown_with_cancel_futures_cancels_what_has_not_run():
    ex = Executor(workers=1)
    running = ex.submit(helpers.sleep_then, 0.3, "ran")
    queued = [ex.submit(helpers.sleep_then, 5.0) for _ in range(5)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    assert running.cancelled() or running.result() == "ran"


def test_import_shoal_stays_light_until_the_executor_is_asked_for():
    import subprocess
    import sys

    code = ("import sys, shoal; before = 'shoal.tasks.executor' in sys.modules; "
            "shoal.Executor; print(before, 'shoal.tasks.executor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("policy", ["least-loaded", "fastest-first"])
def test_the_push_policies_run_a_map_with_mixed_task_lengths_on_the_local_cluster(policy):
    with Executor(workers=2, scheduler=policy) as ex:
        assert ex.scheduler == policy
        delays = [0.05 if i % 10 == 0 else 0.0 for i in range(300)]
        assert list(ex.map(helpers.sleep_then, delays, range(300))) == list(range(300))
        assert list(ex.map(helpers.square, range(2000), chunksize=10)) == [
            x * x for x in range(2000)]


def test_a_result_that_cannot_be_pickled_fails_with_a_clear_serialization_error(executor):
    import threading

    from shoal.errors import SerializationError

    with pytest.raises(SerializationError, match="cannot be pickled") as info:
        executor.submit(threading.Lock).result(timeout=30)
    assert isinstance(info.value.__cause__, RemoteTraceback)


def test_a_task_calling_sys_exit_fails_instead_of_ending_its_worker(executor):
    import sys

    with pytest.raises(RuntimeError, match="SystemExit"):
        executor.submit(sys.exit, 3).result(timeout=30)
    assert executor.submit(helpers.square, 5).result(timeout=30) == 25
