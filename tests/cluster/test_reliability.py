"""Workers and the master die and come back: nothing is lost, nothing stays "running"."""

from __future__ import annotations

import signal
from collections.abc import Callable

from cluster_helpers import (
    CuttableProxy,
    Master,
    Worker,
    output,
    submit,
    wait_for,
    wait_pool_done,
)


def _job(master: Master, job_id: str) -> dict[str, object]:
    job: dict[str, object] = master.api("GET", f"/api/v1/jobs/{job_id}")
    return job


def test_a_worker_killed_mid_job_has_its_jobs_lost_comes_back_as_itself_and_stops_cleanly(
        master: Master, start_workers: Callable[..., list[Worker]]) -> None:
    (worker,) = start_workers(1)
    first_id = worker.id
    pool = submit(master, ["sleep", "300"])
    job_id = pool["jobs"][0]["id"]
    wait_for(lambda: _job(master, job_id)["state"] == "running", what="the job starting")
    worker.stop(signal.SIGKILL)  # its job dies with it (PR_SET_PDEATHSIG)
    wait_for(lambda: worker.state() == "offline", what="the worker going offline")
    lost = wait_for(lambda: (j := _job(master, job_id))["state"] == "lost" and j,
                    what="the job being marked lost")
    assert "worker lost" in str(lost["reason"]) and lost["ended_at"]
    assert master.api("GET", f"/api/v1/pools/{pool['id']}")["state"] == "done"
    assert worker.state() == "lost"
    lost_ones = master.api("GET", "/api/v1/workers", params={"state": "lost"})
    assert [w["name"] for w in lost_ones["items"]] == ["w1"]
    assert master.api("GET", "/api/v1/workers", params={"state": "online"})["total"] == 0
    worker.start()
    worker.wait_online()
    listed = master.api("GET", "/api/v1/workers")
    assert listed["total"] == 1 and listed["items"][0]["id"] == first_id == worker.id
    assert _job(master, job_id)["state"] == "lost"  # it did not come back with the worker
    # Stopped cleanly (SIGTERM), a worker kills its jobs and reports them before it goes.
    again = submit(master, ["sleep", "300"])["jobs"][0]["id"]
    wait_for(lambda: _job(master, again)["state"] == "running", what="the second job starting")
    worker.stop(signal.SIGTERM)
    stopped = wait_for(lambda: (j := _job(master, again))["state"] != "running" and j,
                       what="the job's end reaching the master")
    assert stopped["state"] == "killed" and stopped["signal"] == signal.SIGTERM
    assert stopped["reason"] == "the worker was stopped"


def test_a_master_crash_and_restart_loses_no_pool_job_or_output_and_workers_re_report(
        master: Master, start_workers: Callable[..., list[Worker]]) -> None:
    (worker,) = start_workers(1)
    finished = submit(master, ["sh", "-c", "echo kept"])
    wait_pool_done(master, finished["id"])
    running = submit(master, ["sh", "-c", "echo before; sleep 3; echo after; exit 7"])
    job_id = running["jobs"][0]["id"]
    wait_for(lambda: output(master, job_id)["stdout"] == "before\n", what="the first line")
    master.stop(signal.SIGKILL)  # a crash: what was not yet written is re-sent by the worker
    master.start()  # the job prints "after" while the master is down, or just after
    wait_for(lambda: worker.state() == "online", within=30, what="the worker reconnecting")
    done = wait_pool_done(master, running["id"])
    job = done["jobs"][0]
    assert job["state"] == "exited" and job["exit_code"] == 7, job
    assert output(master, job_id)["stdout"] == "before\nafter\n"
    assert output(master, finished["jobs"][0]["id"])["stdout"] == "kept\n"
    assert master.api("GET", "/api/v1/pools")["total"] == 2


def test_retention_prunes_finished_pools_and_keeps_running_ones(
        start_master: Callable[..., Master], start_workers: Callable[..., list[Worker]]) -> None:
    master = start_master(["--retention", "1s", "--housekeeping", "0.5"])
    start_workers(1, to=master)
    quick = submit(master, ["true"])
    slow = submit(master, ["sleep", "300"])
    wait_pool_done(master, quick["id"])

    def pruned() -> bool:
        with master.client() as client:
            return client.get(f"/api/v1/pools/{quick['id']}").status_code == 404

    wait_for(pruned, within=15, what="the finished pool being pruned")
    kept = master.api("GET", f"/api/v1/pools/{slow['id']}")
    assert kept["state"] == "running"
    master.api("POST", f"/api/v1/pools/{slow['id']}/kill", json={"signal": 9})
    wait_pool_done(master, slow["id"])


def test_a_network_cut_lets_the_job_run_on_and_its_output_and_end_arrive_after(
        start_master: Callable[..., Master], start_workers: Callable[..., list[Worker]]
        ) -> None:
    master = start_master(["--offline-after", "3", "--lost-after", "0.5"])
    proxy = CuttableProxy(master.worker_port)
    try:
        (worker,) = start_workers(1, to=master, extra=["--worker-port", str(proxy.port)])
        pool = submit(master, ["sh", "-c", "echo a; sleep 2; echo b; sleep 1; echo c"])
        job_id = pool["jobs"][0]["id"]
        wait_for(lambda: output(master, job_id)["stdout"] == "a\n", what="the first line")
        proxy.cut(for_s=2.0)
        lost = wait_for(lambda: (j := _job(master, job_id))["state"] == "lost" and j,
                        what="the job being given up as lost")
        assert "worker lost" in str(lost["reason"])
        # The worker comes back still running it: the job is running again, then ends.
        job = wait_for(lambda: (j := _job(master, job_id))["state"] == "exited" and j,
                       within=30, what="the job coming back and ending")
        assert job["exit_code"] == 0 and job["reason"] is None
        assert master.api("GET", f"/api/v1/pools/{pool['id']}")["state"] == "done"
        assert output(master, job_id)["stdout"] == "a\nb\nc\n"
        assert worker.state() == "online"
    finally:
        proxy.close()


def test_a_silent_link_like_a_pulled_cable_is_dropped_by_both_ends_and_remade(
        start_master: Callable[..., Master], start_workers: Callable[..., list[Worker]]
        ) -> None:
    master = start_master(["--offline-after", "2", "--lost-after", "30"])
    proxy = CuttableProxy(master.worker_port)
    try:
        (worker,) = start_workers(1, to=master, extra=["--worker-port", str(proxy.port),
                                                        "--master-silence", "2"])
        pool = submit(master, ["sh", "-c", "echo a; sleep 3; echo b"])
        job_id = pool["jobs"][0]["id"]
        wait_for(lambda: output(master, job_id)["stdout"] == "a\n", what="the first line")
        proxy.freeze(for_s=3.5)  # nothing flows, nothing is closed
        wait_for(lambda: worker.state() == "offline", what="the master giving up the link")
        job = wait_for(lambda: (j := _job(master, job_id))["state"] == "exited" and j,
                       within=30, what="the job's end after the link was remade")
        assert output(master, job_id)["stdout"] == "a\nb\n" and job["exit_code"] == 0
        assert "the master sent nothing for 2 s" in worker.log
        assert worker.state() == "online"
    finally:
        proxy.close()
