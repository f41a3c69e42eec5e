"""Task lifecycle hooks: clean_up on the worker after the call (even when it raised),
finished on the submitting side with the result, before the future resolves."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import task_helpers as helpers

from shoal.tasks import Task, TaskSystem


def test_submit_runs_clean_up_on_the_worker_and_finished_here_before_the_result(
        executor, tmp_path: Path):
    ok = helpers.Cleaned(str(tmp_path), "ok", helpers.add, 2, 3)
    bad = helpers.Cleaned(str(tmp_path), "bad", helpers.fail_on, 7, 7)
    assert executor.submit(ok).result(60) == 5
    assert ok.seen == [(5, None)]      # finished ran before result() returned, in this process
    with pytest.raises(ValueError, match="bad item 7"):
        executor.submit(bad).result(60)
    assert bad.seen == [(None, "ValueError")]
    pids = executor.status()["agents"][0]["pids"]
    for name in ("ok", "bad"):         # clean_up ran in a worker process, also after a raise
        assert int((tmp_path / f"{name}.clean").read_text()) in pids
    assert int((tmp_path / "ok.clean").read_text()) != os.getpid()


def test_any_callable_object_with_the_hooks_works_as_concurrent_tasks_did(executor, tmp_path):
    task = helpers.CallableTask(str(tmp_path), 4)
    assert executor.submit(task).result(60) == 40
    assert task.finished_with == (40, None)
    assert (tmp_path / "callable-4.clean").exists()


def test_an_error_in_a_hook_is_the_tasks_error(executor):
    with pytest.raises(RuntimeError, match="clean_up failed"):
        executor.submit(helpers.BadCleanUp(helpers.square, 3)).result(60)
    with pytest.raises(LookupError, match="finished failed with 9"):
        executor.submit(helpers.BadFinished(helpers.square, 3)).result(60)


def test_a_plain_task_travels_as_its_function_and_arguments():
    # (so the function goes once however many tasks use it); it has no hooks to call.
    from shoal.tasks.systems import call_parts, finished_hook

    task = Task(helpers.add, 1)
    assert call_parts(task) == (helpers.add, (1,), {})
    assert finished_hook(task) is None and finished_hook(helpers.add) is None


class Counting(TaskSystem):
    """Its tasks' finished() runs on the service before task_finished sees them."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.report: list[tuple[str, list, bool]] = []
        self.left = 2

    def generate_tasks(self):
        return [helpers.Cleaned(self.folder, "sys-ok", helpers.square, 4),
                helpers.Cleaned(self.folder, "sys-bad", helpers.fail_on, 1, 1)]

    def task_finished(self, task, result, error):
        self.left -= 1
        self.report.append((task.name, list(task.seen), threading.current_thread().name))

    def is_complete(self):
        return self.left == 0

    def gather_result(self):
        return self.report


def test_a_systems_tasks_run_finished_on_the_service_and_clean_up_on_the_worker(
        executor, tmp_path: Path):
    report = sorted(executor.run_system(Counting(str(tmp_path)), timeout=60))
    assert [(name, seen) for name, seen, _ in report] == [
        ("sys-bad", [(None, "ValueError")]), ("sys-ok", [(16, None)])]
    assert all("/system-" in thread for _, _, thread in report)  # the system's own thread
    assert (tmp_path / "sys-ok.clean").exists() and (tmp_path / "sys-bad.clean").exists()
