"""PCCI's routes and bodies under /pcci, behind shoal's tokens (issue 12), over real HTTP.

The client below does what PCCI's own scripts do (its README's requests and
examples/healthCheck/healthCheck.js): list the workers, POST a job with a
shell-like command, poll GET /pool/:id until its status is set, read each
job's result and status, kill a pool with PUT /kill/:pool.
"""

from __future__ import annotations

from typing import Any

import httpx
from cluster_helpers import Master, Worker, wait_for

Cluster = tuple[Master, list[Worker]]


class PcciClient:
    """A PCCI client moved over: a new base URL and a token header, nothing else."""

    def __init__(self, master: Master, token: str) -> None:
        self.http = httpx.Client(base_url=master.url + "/pcci", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})

    def workers(self) -> list[str]:
        return [w["id"] for w in self.http.get("/workers").json()]

    def job(self, cmd: str, workers: list[str]) -> Any:
        return self.http.post("/job", json={"cmd": cmd, "workers": workers})

    def pool(self, pool_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/pool/{pool_id}")
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        assert len(found) == 1  # PCCI answers a list holding the pool
        return found[0]

    def wait(self, pool_id: str) -> dict[str, Any]:
        result: dict[str, Any] = wait_for(
            lambda: (p := self.pool(pool_id))["status"] is not None and p,
            what=f"pool {pool_id}'s status")
        return result


def test_a_pcci_client_runs_reads_and_kills_jobs_by_changing_its_base_url(
        shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    client = PcciClient(master, master.new_token("submit", "pcci-script"))
    assert {"w1", "w2"} <= set(client.workers())
    peers = client.http.get("/workers").json()
    assert all(w["socket"]["_peername"]["address"] == "127.0.0.1" for w in peers)

    answer = client.job("sh -c 'echo \"cpu 41.5\"; echo line2; echo oops >&2; exit 3'",
                        ["w1", "w2"])
    assert answer.status_code == 200, answer.text
    started = answer.json()
    assert started["message"] == "New pool submited"
    pool = client.wait(started["pool_id"])
    assert pool["id"] == started["pool_id"] and pool["status"] == 1  # a job failed
    assert isinstance(pool["cached_at"], int) and pool["cached_at"] > 1e12  # ms
    assert sorted(j["worker_id"] for j in pool["jobs"]) == ["w1", "w2"]
    for job in pool["jobs"]:
        assert job["code"] == "JOB" and job["pool"] == pool["id"]
        assert job["status"] == 3 and isinstance(job["pid"], int)
        assert job["result"] == "cpu 41.5line2oops\n"  # stdout without line breaks, stderr
        assert job["cmd"] == "sh -c 'echo \"cpu 41.5\"; echo line2; echo oops >&2; exit 3'"
        assert isinstance(job["time_to_calc"], int) and job["time_to_calc"] >= 0
    ok = client.wait(client.job("true", ["w2"]).json()["pool_id"])
    assert ok["status"] == 0 and ok["jobs"][0]["status"] == 0

    slow = client.job("sleep 300", ["w1"]).json()["pool_id"]
    wait_for(lambda: client.pool(slow)["jobs"][0]["pid"] is not None, what="the job running")
    assert client.pool(slow)["status"] is None and client.pool(slow)["cached_at"] is None
    killed = client.http.put(f"/kill/{slow}", json={"workers": ["w1"]})
    assert killed.status_code == 200
    assert killed.json()["message"] == f"Trying to kill job from pool : {slow} on w1"
    ended = client.wait(slow)
    assert ended["status"] == 1 and ended["jobs"][0]["status"] == 128 + 15

    listed = client.http.get("/pools").json()
    assert {started["pool_id"], slow} <= {p["id"] for p in listed}
    # The same pools through the native API.
    native = master.api("GET", f"/api/v1/pools/{slow}")
    assert native["command"] == ["sleep", "300"] and native["jobs"][0]["state"] == "killed"


def test_pcci_errors_keep_pccis_statuses_and_message_beside_the_contracts(
        shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    client = PcciClient(master, master.new_token("submit", "pcci-mistakes"))
    cases = [
        (client.job("", ["w1"]), 400, "Missing command"),
        (client.job("true", ["nobody"]), 400, "One or more worker not connected"),
        (client.http.post("/job", json={"cmd": "true"}), 400, "workers must be a list"),
        (client.http.post("/job", content=b"{not json",
                          headers={"content-type": "application/json"}), 400, "JSON"),
        (client.job("echo 'open", ["w1"]), 400, "No closing quotation"),
        (client.http.get("/pool/1634423005857"), 404, "Pool ID not found or expired"),
        (client.http.put("/kill/1634423005857", json={"workers": ["w1"]}), 404,
         "Pool ID not found or expired"),
    ]
    for answer, status, text in cases:
        assert answer.status_code == status, (text, answer.text)
        body = answer.json()
        assert text in body["message"] and body["error"]["message"] == body["message"]


def test_pcci_routes_are_behind_the_same_tokens(shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    with httpx.Client(base_url=master.url + "/pcci", timeout=30) as anonymous:
        for answer in (anonymous.get("/workers"), anonymous.get("/pools"),
                       anonymous.post("/job", json={"cmd": "true", "workers": ["w1"]})):
            assert answer.status_code == 401 and "message" in answer.json()
    reader = PcciClient(master, master.new_token("read", "pcci-reader"))
    assert reader.http.get("/pools").status_code == 200
    refused = reader.job("true", ["w1"])
    assert refused.status_code == 403 and "scope" in refused.json()["message"]
