"""Submitting commands to workers: pools, jobs, output, exit codes."""

from __future__ import annotations

import signal
from pathlib import Path

from cluster_helpers import Master, Worker, output, submit, wait_pool_done


def test_a_command_submitted_to_all_workers_runs_once_on_each(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
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
                        "offset_stderr": 4, "done": True, "truncated": False}
    assert done["ended_at"] is not None and done["submitted_by"] == "admin-of-tests"


def test_a_command_goes_only_to_the_listed_workers(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, workers = shared_cluster
    pool = submit(master, ["true"], workers=[workers[1].id])
    assert [j["worker_name"] for j in pool["jobs"]] == ["w2"]
    assert wait_pool_done(master, pool["id"])["jobs"][0]["exit_code"] == 0


def test_an_unknown_worker_is_refused_naming_it(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    with master.client() as client:
        response = client.post("/api/v1/pools", json={"command": ["true"],
                                                      "workers": ["w1", "nobody"]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_worker"
    assert "nobody" in response.json()["error"]["message"]


def test_a_pool_for_all_workers_with_none_online_is_a_conflict(shared_master: Master) -> None:
    with shared_master.client() as client:
        response = client.post("/api/v1/pools", json={"command": ["true"]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_workers"


def test_a_program_that_cannot_start_fails_with_the_reason(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    pool = submit(master, ["/no/such/program"], workers=["w1"])
    job = wait_pool_done(master, pool["id"])["jobs"][0]
    assert job["state"] == "failed"
    assert "/no/such/program" in job["reason"] and job["exit_code"] is None


def test_environment_working_folder_and_timeout_are_honoured(
        shared_cluster: tuple[Master, list[Worker]], tmp_path: Path) -> None:
    master, _ = shared_cluster
    pool = submit(master, ["sh", "-c", "echo $GREETING; pwd"], workers=["w1"],
                  env={"GREETING": "hello"}, cwd=str(tmp_path))
    job = wait_pool_done(master, pool["id"])["jobs"][0]
    assert output(master, job["id"])["stdout"] == f"hello\n{tmp_path}\n"
    slow = submit(master, ["sleep", "60"], workers=["w2"], timeout=0.5)
    job = wait_pool_done(master, slow["id"])["jobs"][0]
    assert job["state"] == "killed" and job["signal"] == signal.SIGTERM
    assert "timed out" in job["reason"]


def test_pools_are_listed_newest_first_in_pages_and_filtered(
        cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = cluster
    on_w1 = [submit(master, ["true"], workers=["w1"])["id"] for _ in range(3)]
    on_w2 = submit(master, ["sleep", "30"], workers=["w2"])["id"]
    for pool_id in on_w1:
        wait_pool_done(master, pool_id)
    page = master.api("GET", "/api/v1/pools", params={"limit": 2})
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 0
    assert [p["id"] for p in page["items"]] == [on_w2, on_w1[2]]
    rest = master.api("GET", "/api/v1/pools", params={"limit": 2, "offset": 2})
    assert [p["id"] for p in rest["items"]] == [on_w1[1], on_w1[0]]
    running = master.api("GET", "/api/v1/pools", params={"state": "running"})
    assert [p["id"] for p in running["items"]] == [on_w2]
    done = master.api("GET", "/api/v1/pools", params={"state": "done", "worker": "w1"})
    assert {p["id"] for p in done["items"]} == set(on_w1) and done["total"] == 3
    assert master.api("GET", "/api/v1/pools", params={"worker": "w2"})["total"] == 1
    master.api("POST", f"/api/v1/pools/{on_w2}/kill", json={"workers": None, "signal": 9})
    assert wait_pool_done(master, on_w2)["jobs"][0]["signal"] == 9


def test_unknown_pools_and_jobs_are_404_in_the_contracts_shape(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    with master.client() as client:
        for path, code in (("/api/v1/pools/0d9e3a4e-1111-4b7f-9f7c-000000000000",
                            "pool_not_found"),
                           ("/api/v1/jobs/nope", "job_not_found"),
                           ("/api/v1/jobs/nope/output", "job_not_found"),
                           ("/api/v1/workers/nobody", "worker_not_found")):
            response = client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == code
