"""The task service on the master's REST API (docs/contracts/cluster-rest.md, last section).

A real ``shoal master`` and one ``shoal worker`` with two task processes; tasks and
task systems come from an executor logged in on the master's task port.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import task_helpers as helpers

from shoal.tasks import Executor

for needed in ("fastapi", "sqlalchemy", "alembic", "httpx", "psutil"):
    pytest.importorskip(needed)  # the master: pip install 'shoal[cluster,test]'
sys.path.insert(0, str(Path(__file__).parents[1] / "cluster"))  # the cluster tests' helpers
from cluster_helpers import PASSWORD, Master, Worker, free_port_pair, wait_for


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    base = tmp_path_factory.mktemp("tasks-rest")
    (base / "master").mkdir()
    master = Master(base / "master", free_port_pair(), [])
    worker = Worker(base / "w1", "w1", master, extra=["--task-slots", "2"])
    try:
        master.setup()
        master.start()
        worker.start()
        worker.wait_online()
        # The agent's processes start once it links: before any test begins (each test
        # checks that it leaves no process behind).
        with Executor(f"shoal://127.0.0.1:{master.task_port}", password=PASSWORD) as ex:
            wait_for(lambda: [len(a["pids"]) for a in ex.status()["agents"]] == [2], 30,
                     what="the worker's task agent linking")
        yield master
    finally:
        worker.stop()
        master.stop()


@pytest.fixture
def executor(master: Master) -> Iterator[Executor]:
    with Executor(f"shoal://127.0.0.1:{master.task_port}", password=PASSWORD,
                  modules=[helpers]) as ex:
        yield ex


def test_get_tasks_serves_the_task_services_state(master, executor, tmp_path):
    before = master.api("GET", "/api/v1/tasks")
    futures = [executor.submit(helpers.square, i) for i in range(5)]
    futures.append(executor.submit(helpers.fail_on, 1, 1))
    for future in futures:
        future.exception(60)
    gate = tmp_path / "gate"
    running = executor.submit_system(helpers.Waiting(str(gate)))

    def system_listed():
        state = master.api("GET", "/api/v1/tasks")
        return state if [s["name"] for s in state["systems"]] == ["waiting"] else None

    state = wait_for(system_listed, 30, what="the task system being listed")
    assert state["scheduler"] == "pull"
    assert (state["done"] - before["done"], state["failed"] - before["failed"]) == (5, 1)
    assert state["running"] == 1 and state["queued"] == 0
    assert state["throughput"] > 0
    [w1] = state["workers"]
    assert (w1["name"], w1["slots"], w1["running"]) == ("w1", 2, 1)
    assert w1["done"] - sum(w["done"] for w in before["workers"]) == 5
    assert state["systems"] == [{"name": "waiting", "queued": 0, "running": 1, "done": 0,
                                 "failed": 0}]
    gate.touch()
    assert running.result(60) == "opened"
    after = wait_for(lambda: (s := master.api("GET", "/api/v1/tasks"))["systems"] == [] and s,
                     30, what="the finished system leaving the list")
    assert after["running"] == 0 and after["done"] - state["done"] == 1


def test_get_tasks_needs_a_read_token(master):
    read = master.new_token("read", "reader")
    with master.client(token=read) as client:
        assert client.get("/api/v1/tasks").status_code == 200
    with master.client(token="") as client:
        answer = client.get("/api/v1/tasks")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "missing_token"


def test_json_remote_methods_are_listed_and_called_over_rest(master, executor, tmp_path):
    running = executor.submit_system(helpers.Controlled(str(tmp_path / "gate")))
    executor.call(running, "add", 4)  # the system is up and registered once this answers
    listed = master.api("GET", "/api/v1/tasks/methods")
    assert sorted((m["system"], m["name"]) for m in listed) == [
        ("controlled", "as_set"), ("controlled", "fail"), ("controlled", "progress"),
        ("controlled", "stop")]                                  # json=True ones only
    assert next(m for m in listed if m["name"] == "progress")["doc"] == "How far it got."
    assert master.api("POST", "/api/v1/tasks/methods/controlled/progress") == {
        "result": {"count": 4, "values": 0}}

    with master.client() as client:
        raised = client.post("/api/v1/tasks/methods/controlled/fail",
                             json={"args": ["no luck"]})
        not_json = client.post("/api/v1/tasks/methods/controlled/as_set", json={})
        unknown_method = client.post("/api/v1/tasks/methods/controlled/add", json={})
        unknown_system = client.post("/api/v1/tasks/methods/nope/progress", json={})
        bad_args = client.post("/api/v1/tasks/methods/controlled/progress",
                               json={"kwargs": {"surplus": 1}})
    assert raised.status_code == 422
    error = raised.json()["error"]
    assert (error["code"], error["message"]) == ("remote_error", "ValueError: no luck")
    assert "in fail_now" in error["traceback"] and "raise ValueError(why)" in error["traceback"]
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "not_json"
    assert unknown_method.status_code == 404      # add is @remote, but not json=True
    assert "no JSON remote method 'add'" in unknown_method.json()["error"]["message"]
    assert unknown_system.status_code == 404
    assert bad_args.status_code == 422 and "surplus" in bad_args.json()["error"]["message"]

    read = master.new_token("read", "reader")
    with master.client(token=read) as client:
        assert client.get("/api/v1/tasks/methods").status_code == 200
        assert client.post("/api/v1/tasks/methods/controlled/stop").status_code == 403
    assert master.api("POST", "/api/v1/tasks/methods/controlled/stop",
                      json={"args": []}) == {"result": True}
    assert running.result(60) == (4, ["gate"])
    assert master.api("GET", "/api/v1/tasks/methods") == []
