"""Fault tolerance on the local cluster: killed workers, poison tasks, cancelling running ones."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import task_helpers as helpers

from process_support import eventually
from shoal.tasks import Executor, PoisonTaskError


def test_a_worker_process_killed_mid_task_has_its_task_rerun_and_each_result_delivered_once(
        tmp_path: Path):
    with Executor(workers=2) as ex:
        futures = [ex.submit(helpers.mark_and_sleep, str(tmp_path), f"t{i}", seconds)
                   for i, seconds in enumerate([60.0, 0.2, 0.2, 0.2])]
        victim = eventually(lambda: list(tmp_path.glob("t0.1")))[0]
        os.kill(int(victim.read_text()), signal.SIGKILL)
        results = [f.result(timeout=60) for f in futures]
        # The killed one ran twice, the others once; each result arrived exactly once.
        assert results == ["t0 ran 2 time(s)"] + [f"t{i} ran 1 time(s)" for i in (1, 2, 3)]
        assert list(ex.map(helpers.square, range(50))) == [x * x for x in range(50)]


def test_a_task_that_kills_its_worker_every_time_fails_as_poison():
    with Executor(workers=2, retries=2) as ex:
        future = ex.submit(helpers.kill_own_process)
        with pytest.raises(PoisonTaskError, match="killed the worker process running it 3 times"):
            future.result(timeout=60)
        assert ex.submit(helpers.add, 1, 2).result(timeout=30) == 3


def test_cancelling_a_running_task_kills_its_process_and_a_new_one_takes_its_place(
        tmp_path: Path):
    with Executor(workers=1) as ex:
        running = ex.submit(helpers.mark_and_sleep, str(tmp_path), "long", 60.0)
        pid = int(eventually(lambda: list(tmp_path.glob("long.1")))[0].read_text())
        assert running.cancel()
        eventually(lambda: not _alive(pid))
        assert ex.submit(helpers.pid).result(timeout=30) != pid
        time.sleep(0.3)
        assert not list(tmp_path.glob("long.2"))  # a cancelled task is not retried


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def test_a_long_task_does_not_hold_up_the_short_ones_queued_behind_it(tmp_path: Path):
    with Executor(workers=2) as ex:
        # Fast tasks first: the agent then hands a process many tasks at once, so the long
        # one and every short one go to the same process, and the other must take them.
        assert list(ex.map(helpers.square, range(300))) == [x * x for x in range(300)]
        gate = tmp_path / "gate"
        results = ex.map(helpers.long_or_short, [str(gate)] + [None] * 40, unordered=True)
        # The 40 short ones all finish while the long one still waits for its gate.
        assert [next(results) for _ in range(40)] == ["short"] * 40
        gate.touch()
        assert list(results) == ["long"]
