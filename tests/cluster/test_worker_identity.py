"""One identity per worker, and stale workers can be removed (issue 13, item 3)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from cli_helpers import cli
from cluster_helpers import Master, Worker, wait_for


def _exited(worker: Worker, within: float = 30.0) -> int:
    assert worker.proc is not None
    return worker.proc.wait(within)


def _error_line(worker: Worker) -> str:
    return worker.log.strip().splitlines()[-1]


def test_two_workers_on_one_machine_with_one_state_folder_are_two_workers(
        master: Master, tmp_path: Path) -> None:
    shared = tmp_path / "one-machine"
    first, second = Worker(shared, "w1", master), Worker(shared, "w2", master)
    try:
        for worker in (first, second):
            worker.start()
        for worker in (first, second):
            worker.wait_online()
        assert first.id != second.id
        time.sleep(3)  # they used to knock each other off every 0.6 s
        listed = master.api("GET", "/api/v1/workers")["items"]
        assert sorted((w["name"], w["state"]) for w in listed) == [("w1", "online"),
                                                                  ("w2", "online")]
        assert "link to the master broke" not in first.log + second.log
        # A second worker of the same name there refuses to start, naming the first.
        again = Worker(shared, "w1", master)
        again.start()
        assert _exited(again) == 2
        assert _error_line(again) == (
            f"shoal worker: error: another `shoal worker` named 'w1' runs on this machine "
            f"(pid {first.proc.pid if first.proc else '?'}); give each worker its own --name")
        assert first.state() == "online"
    finally:
        for worker in (first, second):
            worker.stop()


def test_the_master_refuses_a_second_link_of_a_live_identity_or_name_in_one_line(
        master: Master, start_workers: Callable[..., list[Worker]], tmp_path: Path) -> None:
    (original,) = start_workers(1, names=["pi-07"])
    copied = tmp_path / "copied-sd-card"  # the same identity on another machine
    shutil.copytree(original.dir / "state", copied / "state")
    twin = Worker(copied, "pi-07", master)
    other = Worker(tmp_path / "another-machine", "pi-07", master)  # a new id, the same name
    try:
        twin.start()
        assert _exited(twin) == 1
        assert _error_line(twin).startswith(
            "shoal worker: error: the master refused this worker: worker id "
            f"{original.id} is already linked, as 'pi-07' from 127.0.0.1: two workers share "
            "one identity")
        other.start()
        assert _exited(other) == 1
        assert _error_line(other) == (
            "shoal worker: error: the master refused this worker: a worker named 'pi-07' is "
            f"already online (id {original.id}, from 127.0.0.1); give this one another --name")
        for refused in (twin, other):  # no reconnection storm: one try each
            assert refused.log.count("the master refused this worker") == 1
        listed = master.api("GET", "/api/v1/workers")
        assert listed["total"] == 1 and listed["items"][0]["id"] == original.id
        assert original.state() == "online"
    finally:
        for worker in (twin, other):
            worker.stop()


def test_a_stale_worker_is_removed_by_rest_and_cli_with_an_admin_token(
        master: Master, start_workers: Callable[..., list[Worker]], tmp_path: Path) -> None:
    stale, _busy, later = start_workers(3, names=["stale", "busy", "later"])
    with master.client() as admin:
        refused = admin.delete("/api/v1/workers/busy")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "worker_online"
        stale.stop()
        later.stop()
        wait_for(lambda: stale.state() == "offline" and later.state() == "offline",
                 what="the workers going offline")
        submitter = master.new_token("submit", "not-enough")
        with master.client(submitter) as client:
            assert client.delete("/api/v1/workers/stale").status_code == 403
        assert admin.delete("/api/v1/workers/stale").status_code == 204
        assert admin.get("/api/v1/workers/stale").status_code == 404
        assert admin.delete(f"/api/v1/workers/{stale.id}").status_code == 404
    done = cli(master, "workers", "rm", "later", home=tmp_path)
    assert done.returncode == 0 and done.stdout == "worker later removed\n", done.stderr
    names = [w["name"] for w in master.api("GET", "/api/v1/workers")["items"]]
    assert names == ["busy"]
    metrics = master.api("GET", "/api/v1/workers", params={"state": "offline"})
    assert metrics["total"] == 0
    listed = cli(master, "workers", "--json", home=tmp_path)
    assert [w["name"] for w in json.loads(listed.stdout)["items"]] == ["busy"]
    stale.start()  # a removed worker that links again is back, as itself
    stale.wait_online()
    assert master.api("GET", "/api/v1/workers/stale")["id"] == stale.id
