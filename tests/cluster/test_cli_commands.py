"""shoal submit, pools, pool, kill and workers against a real master and real workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cli_helpers import UUID, cli, row_of
from cluster_helpers import Master, Worker, wait_for, wait_pool_done

Cluster = tuple[Master, list[Worker]]


def _state_of(master: Master, pool_id: str, worker: str) -> str:
    pool = master.api("GET", f"/api/v1/pools/{pool_id}")
    return next(job["state"] for job in pool["jobs"] if job["worker_name"] == worker)


def test_workers_lists_each_worker_online_with_its_id(shared_cluster: Cluster,
                                                      tmp_path: Path) -> None:
    master, workers = shared_cluster
    done = cli(master, "workers", home=tmp_path)
    assert done.returncode == 0, done.stderr
    for worker in workers:
        row = row_of(done.stdout, worker.name)
        assert "online" in row and worker.id in row
    listed = json.loads(cli(master, "workers", "--json", home=tmp_path).stdout)
    assert sorted(w["name"] for w in listed["items"]) == ["w1", "w2"]
    assert all(w["health"]["cpu_percent"] is not None for w in listed["items"])


def test_submit_prints_the_pool_id_and_pool_shows_each_jobs_exit_code_and_output(
        shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    done = cli(master, "submit", "--workers", "w1,w2", "--", "sh", "-c",
               "echo out-$0; exit 3", "x", home=tmp_path)
    assert done.returncode == 0, done.stderr
    pool_id = done.stdout.strip()
    assert UUID.match(pool_id), done.stdout
    wait_pool_done(master, pool_id)
    shown = cli(master, "pool", pool_id, "--output", home=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "command: sh -c 'echo out-$0; exit 3' x" in shown.stdout
    for name in ("w1", "w2"):
        assert "exited 3" in row_of(shown.stdout, name)
        assert f"[{name}] out-x\n" in shown.stdout


def test_submit_follow_streams_output_labelled_by_worker_and_exits_with_the_jobs_status(
        shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    done = cli(master, "submit", "--all", "--follow", "--", "sh", "-c",
               "echo one; echo two >&2; printf 'no newline'; exit 4", home=tmp_path)
    assert done.returncode == 4, done.stderr
    for name in ("w1", "w2"):
        assert f"[{name}] one\n" in done.stdout
        assert f"[{name}] no newline\n" in done.stdout
        assert f"[{name}] two\n" in done.stderr
        assert f"[{name}] exited 4\n" in done.stderr
    assert UUID.match(done.stderr.splitlines()[0].split()[1])


def test_kill_on_one_worker_marks_its_job_killed_by_sigterm_and_leaves_the_other(
        shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    pool_id = cli(master, "submit", "--all", "--", "sleep", "600", home=tmp_path).stdout.strip()
    for name in ("w1", "w2"):
        wait_for(lambda n=name: _state_of(master, pool_id, n) == "running",
                 what=f"the job on {name} starting")
    running = cli(master, "pools", "--state", "running", home=tmp_path)
    assert pool_id in running.stdout

    killed = cli(master, "kill", pool_id, "--workers", "w1", home=tmp_path)
    assert killed.returncode == 0, killed.stderr
    assert "killed by SIGTERM (15)" in row_of(killed.stdout, "w1")
    assert "running" in row_of(killed.stdout, "w2")

    rest = cli(master, "kill", pool_id, "--signal", "KILL", home=tmp_path)
    assert rest.returncode == 0, rest.stderr
    assert "killed by SIGKILL (9)" in row_of(rest.stdout, "w2")
    finished = cli(master, "pools", "--state", "done", "--limit", "100", home=tmp_path)
    assert pool_id in finished.stdout


def test_pools_pages_newest_first_with_a_hint_for_the_next_page(
        shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    first = cli(master, "submit", "-w", "w1", "--", "true", home=tmp_path).stdout.strip()
    second = cli(master, "submit", "-w", "w1", "--", "true", home=tmp_path).stdout.strip()
    page = cli(master, "pools", "--limit", "1", home=tmp_path)
    assert page.returncode == 0, page.stderr
    assert second in page.stdout and first not in page.stdout
    assert "--offset 1 for more" in page.stdout
    older = json.loads(cli(master, "pools", "--limit", "1", "--offset", "1", "--json",
                           home=tmp_path).stdout)
    assert [pool["id"] for pool in older["items"]] == [first]


def test_an_unknown_worker_is_one_line_with_the_masters_message(
        shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    done = cli(master, "submit", "-w", "w1,nobody", "--", "true", home=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("shoal submit: error: ")
    assert "nobody" in done.stderr and done.stderr.count("\n") == 1


def test_a_read_token_can_list_but_not_submit_and_a_wrong_one_is_refused(
        shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    reader = master.new_token("read", "reader")
    assert cli(master, "workers", token=reader, home=tmp_path).returncode == 0
    refused = cli(master, "submit", "--all", "--", "true", token=reader, home=tmp_path)
    assert refused.returncode == 1
    assert "larger scope" in refused.stderr
    wrong = cli(master, "pools", token="not-a-token", home=tmp_path)
    assert wrong.returncode == 1
    assert "shoal master token create" in wrong.stderr


def test_a_missing_pool_is_reported_not_found(shared_cluster: Cluster, tmp_path: Path) -> None:
    master, _ = shared_cluster
    done = cli(master, "pool", "00000000-0000-0000-0000-000000000000", home=tmp_path)
    assert done.returncode == 1
    assert "shoal pool: error:" in done.stderr


def test_following_a_pool_survives_a_master_restart_without_repeating_output(
        start_master: Callable[..., Master], tmp_path: Path) -> None:
    # Timings long enough that a loaded machine's slow worker reconnection does
    # not get the job marked lost while the master is down.
    master = start_master(["--offline-after", "20", "--lost-after", "60"])
    worker = Worker(tmp_path / "worker-w1", "w1", master)
    gate = tmp_path / "gate"
    env = {**os.environ, "SHOAL_CONFIG_DIR": str(tmp_path), "SHOAL_MASTER": master.url,
           "SHOAL_TOKEN": master.token}
    follower: subprocess.Popen[str] | None = None
    try:
        worker.start()
        worker.wait_online()
        follower = subprocess.Popen(
            [sys.executable, "-m", "shoal", "submit", "-w", "w1", "--follow", "--", "sh", "-c",
             f"echo before; while [ ! -e {gate} ]; do sleep 0.05; done; echo after"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert follower.stdout is not None
        assert follower.stdout.readline() == "[w1] before\n"
        master.restart()
        gate.touch()
        out, err = follower.communicate(timeout=60)
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.communicate()
        worker.stop()
    assert follower.returncode == 0, err
    assert out == "[w1] after\n"
