"""Kill ends a job's whole process tree and records the signal that ended it."""

from __future__ import annotations

import signal

import psutil
from cluster_helpers import Master, Worker, output, submit, wait_for, wait_pool_done


def _running(master: Master, job_id: str) -> bool:
    return bool(master.api("GET", f"/api/v1/jobs/{job_id}")["state"] == "running")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_kill_ends_the_whole_process_tree_and_records_the_signal(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    pool = submit(master, ["sh", "-c", "sleep 300 & echo $!; sleep 300"])
    for job in pool["jobs"]:
        wait_for(lambda job=job: output(master, job["id"])["stdout"], what="the child's pid")
    children = {j["id"]: int(output(master, j["id"])["stdout"]) for j in pool["jobs"]}
    leaders = {j["id"]: master.api("GET", f"/api/v1/jobs/{j['id']}")["pid"]
               for j in pool["jobs"]}
    killed = master.api("POST", f"/api/v1/pools/{pool['id']}/kill", json={"workers": ["w1"]})
    assert killed["id"] == pool["id"]
    on_w1 = next(j for j in pool["jobs"] if j["worker_name"] == "w1")
    on_w2 = next(j for j in pool["jobs"] if j["worker_name"] == "w2")
    wait_for(lambda: master.api("GET", f"/api/v1/jobs/{on_w1['id']}")["state"] == "killed",
             what="the job on w1 ending")
    job = master.api("GET", f"/api/v1/jobs/{on_w1['id']}")
    assert job["signal"] == signal.SIGTERM and job["exit_code"] is None
    assert wait_for(lambda: _gone(children[on_w1["id"]]) and _gone(leaders[on_w1["id"]]))
    assert _running(master, on_w2["id"]) and not _gone(children[on_w2["id"]])  # not listed
    master.api("POST", f"/api/v1/pools/{pool['id']}/kill", json={"signal": 9})
    done = wait_pool_done(master, pool["id"])
    assert {j["worker_name"]: j["signal"] for j in done["jobs"]} == {"w1": 15, "w2": 9}
    assert wait_for(lambda: all(_gone(p) for p in [*children.values(), *leaders.values()]))


def test_a_job_that_ignores_sigterm_gets_sigkill_five_seconds_later(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    pool = submit(master, ["sh", "-c", "trap '' TERM; echo ready; sleep 300"], workers=["w2"])
    job_id = pool["jobs"][0]["id"]
    wait_for(lambda: output(master, job_id)["stdout"] == "ready\n", what="the trap being set")
    master.api("POST", f"/api/v1/pools/{pool['id']}/kill", json={})
    job = wait_pool_done(master, pool["id"], within=30)["jobs"][0]
    assert job["state"] == "killed" and job["signal"] == signal.SIGKILL


def test_a_kill_right_after_the_submission_still_kills_the_job(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    pool = submit(master, ["sleep", "300"], workers=["w1"])
    master.api("POST", f"/api/v1/pools/{pool['id']}/kill", json={})
    job = wait_pool_done(master, pool["id"])["jobs"][0]
    assert job["state"] == "killed" and job["signal"] == signal.SIGTERM
