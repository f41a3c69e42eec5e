"""Task systems run on the master: generate tasks, react to results, stop when complete."""

from __future__ import annotations

import os

import pytest
import task_helpers as helpers

from shoal.tasks import Executor, Task, TaskSystem


@pytest.fixture
def executor():
    # Its own cluster per test: an early stop kills running tasks' processes, and their
    # replacements must not outlive the test.
    with Executor(workers=2) as ex:
        yield ex


class SquaresThenSum(TaskSystem):
    """Squares 0..n-1, and for each even square a follow-up task adds 1 to it."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.values: list[int] = []
        self.errors: list[str] = []
        self.outstanding = 0

    def generate_tasks(self):
        self.outstanding = self.n + 1
        return [Task(helpers.square, i) for i in range(self.n)] + [
            Task(helpers.fail_on, 1, 1)]

    def task_finished(self, task, result, error):
        self.outstanding -= 1
        if error is not None:
            self.errors.append(f"{type(error).__name__}: {error} on {error.__cause__.where}")
            return None
        if task.fn is helpers.square and result % 2 == 0:
            self.outstanding += 1
            return [Task(helpers.add, result, 1)]
        self.values.append(result)
        return None

    def is_complete(self):
        return self.outstanding == 0

    def gather_result(self):
        return sorted(self.values), self.errors


class Search(TaskSystem):
    """Looks for a number in 100 ranges; stops at the first hit (the rest is cancelled)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.found = None
        self.finished = 0
        self.where = ""

    def init_system(self):
        import os

        self.where = f"initialised in pid {os.getpid()}"

    def generate_tasks(self):
        return (Task(helpers.find_in_range, lo, lo + 10, self.target) for lo in range(0, 1000, 10))

    def task_finished(self, task, result, error):
        self.finished += 1
        if result is not None:
            self.found = result

    def is_complete(self):
        return self.found is not None

    def gather_result(self):
        return self.found, self.finished, self.where


class Broken(TaskSystem):
    def generate_tasks(self):
        return [Task(helpers.square, 2)]

    def task_finished(self, task, result, error):
        raise KeyError("the system's own bug")


def test_a_task_system_generates_follow_up_tasks_and_sees_remote_errors(executor):
    values, errors = executor.run_system(SquaresThenSum(10), timeout=60)
    assert values == sorted(x * x + (1 if x % 2 == 0 else 0) for x in range(10))
    assert len(errors) == 1 and errors[0].startswith("ValueError: bad item 1 on local/")


def test_a_search_system_stops_early_when_it_finds_the_answer(executor):
    found, finished, where = executor.run_system(Search(42), timeout=60)
    assert found == 42 and finished < 100
    # init_system (Concurrent's) ran first, on the service: the local cluster's process.
    assert where.startswith("initialised in pid ") and where != f"initialised in pid {os.getpid()}"


def test_an_exception_in_the_system_reaches_the_caller_with_its_traceback(executor):
    with pytest.raises(KeyError, match="own bug") as info:
        executor.run_system(Broken(), timeout=60)
    assert "task_finished" in info.value.__cause__.remote_traceback


def test_run_system_works_from_asyncio(executor):
    import asyncio

    found, _, _ = asyncio.run(executor.arun_system(Search(7)))
    assert found == 7
