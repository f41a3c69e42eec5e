"""Remote methods of task systems, called by an executor (Concurrent's @tcpremote)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import task_helpers as helpers

from shoal.tasks import Executor, TaskSystem, UnknownMethodError, remote
from shoal.tasks.systems import remote_methods


@pytest.fixture
def executor() -> Iterator[Executor]:
    with Executor(workers=2) as ex:
        yield ex


def wait_listed(ex: Executor, system: str) -> list[dict]:
    from process_support import eventually

    return eventually(lambda: [m for m in ex.methods() if m["system"] == system], 30)


def test_an_executor_calls_a_running_systems_remote_methods(executor, tmp_path: Path):
    gate = tmp_path / "gate"
    running = executor.submit_system(helpers.Controlled(str(gate)))
    assert executor.call(running, "add", 2) == 2          # by the system's future
    listed = wait_listed(executor, "controlled")
    assert executor.call("controlled", "add", n=3) == 5    # by its name
    assert {(m["name"], m["json"]) for m in listed} == {
        ("add", False), ("progress", True), ("fail", True), ("as_set", True), ("more", False),
        ("stop", True), ("thread", False)}
    # In the system's own thread on the service (one at a time, between results).
    assert "/system-" in executor.call(running, "thread")
    assert next(m for m in listed if m["name"] == "progress")["doc"] == "How far it got."
    assert executor.call(running, "progress") == {"count": 5, "values": 0}
    assert executor.call(running, "as_set") == {1, 2}      # executors get any pickle
    assert executor.call(running, "more", 3) == 3          # it may submit tasks
    assert executor.call(running, "stop") is True
    count, values = running.result(60)
    assert count == 5 and values == [0, 1, 4, "gate"]


def test_a_remote_methods_exception_comes_back_with_its_traceback(executor, tmp_path):
    running = executor.submit_system(helpers.Controlled(str(tmp_path / "gate")))
    with pytest.raises(ValueError, match="out of luck") as info:
        executor.call(running, "fail", "out of luck")
    trace = info.value.__cause__.remote_traceback
    assert "in fail_now" in trace and "raise ValueError(why)" in trace
    with pytest.raises(UnknownMethodError, match=r"no remote method 'not_remote' \(it has: "):
        executor.call(running, "not_remote")
    with pytest.raises(UnknownMethodError, match="no task system 'nope' runs on this service"):
        executor.call("nope", "add")
    executor.call(running, "stop")
    running.result(60)
    with pytest.raises(UnknownMethodError, match=r"has finished|no task system"):
        executor.call(running, "add")
    with pytest.raises(TypeError, match="name, or the future"):
        executor.call(executor.submit(helpers.square, 2), "add")


def test_remote_marks_methods_with_the_name_clients_use_a_json_flag_and_a_doc():
    class Probe(TaskSystem):
        @remote
        def where(self):
            pass

        @remote(name="renamed", json=True)
        def original(self):
            """First paragraph.

            Second."""

        def plain(self):
            pass

    found = remote_methods(Probe)
    assert sorted(found) == ["renamed", "where"]
    assert (found["renamed"].attribute, found["renamed"].json,
            found["renamed"].doc) == ("original", True, "First paragraph.")
    assert not found["where"].json
