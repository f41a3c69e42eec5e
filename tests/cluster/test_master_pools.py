"""Submitting commands to workers: pools, jobs, output, exit codes."""

from __future__ import annotations

from cluster_helpers import Master, Worker, output, submit, wait_pool_done


def test_a_command_submitted_to_all_workers_runs_once_on_each(
        cluster: tuple[Master, list[Worker]]) -> None:
    master, workers = cluster
    pool = submit(master, ["sh", "-c", "echo out-$0; echo err >&2; exit 3", "x"])
    assert pool["state"] == "running"
    assert sorted(j["worker_name"] for j in pool["jobs"]) == ["w1", "w2"]
    done = wait_pool_done(master, pool["id"])
    for job in done["jobs"]:
        assert job["state"] == "exited"
        assert job["exit_code"] == 3 and job["signal"] is None
        assert job["started_at"] and job["ended_at"] and job["pid"]
        text = output(master, job["id"])
        assert text == {"stdout": "out-x\n", "stderr": "err\n", "offset_stdout": 6,
                        "offset_stderr": 4, "done": True}
    assert done["ended_at"] is not None and done["submitted_by"] == "admin-of-tests"


def test_a_command_goes_only_to_the_listed_workers(
        cluster: tuple[Master, list[Worker]]) -> None:
    master, workers = cluster
    pool = submit(master, ["true"], workers=[workers[1].id])
    assert [j["worker_name"] for j in pool["jobs"]] == ["w2"]
    assert wait_pool_done(master, pool["id"])["jobs"][0]["exit_code"] == 0
