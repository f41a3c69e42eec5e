"""Limits that agree end to end, and answers that stay small whatever is stored (issue 11.1).

* a body over the master's limit is 413 with the contract's error body, from its
  Content-Length or while a chunked one is read, and creates nothing;
* a command the worker link could not carry is 413 ``command_too_large``, and
  one just under that limit is carried and runs;
* pool lists are summaries (the command cut, jobs counted), a page at a time;
* a read token's many concurrent GETs against large stored pools cannot make a
  master whose address space is capped (RLIMIT_AS) run out of memory.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from cluster_helpers import Master, Worker, output, submit, wait_pool_done

from shoal.cluster.db.engine import open_database
from shoal.cluster.db.models import utcnow
from shoal.cluster.db.store import Store
from shoal.cluster.limits import MAX_BODY, MAX_PAGE, MAX_RUN, SUMMARY_ARG_CHARS, SUMMARY_ARGS

Cluster = tuple[Master, list[Worker]]


def _pool_count(master: Master) -> int:
    total: int = master.api("GET", "/api/v1/pools", params={"limit": 1})["total"]
    return total


def test_a_body_over_the_limit_is_413_with_the_contracts_error_and_creates_nothing(
        shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    before = _pool_count(master)
    big = {"command": ["echo", "x" * MAX_BODY], "workers": ["w1"]}
    with master.client() as client:
        answer = client.post("/api/v1/pools", json=big)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it comes
            yield b'{"command": ["echo", "'
            for _ in range(MAX_BODY // 65536 + 2):
                yield b"y" * 65536
            yield b'"], "workers": ["w1"]}'

        chunked = client.post("/api/v1/pools", content=chunks(),
                              headers={"content-type": "application/json"})
    for response in (answer, chunked):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "body_too_large"
        assert "over the master's limit of 1 MiB" in error["message"]
    assert _pool_count(master) == before


def test_a_body_that_is_no_utf8_json_is_422_invalid_request_on_every_route(
        shared_cluster: Cluster) -> None:
    # Found by the schema's fuzzing: bytes that are no UTF-8 made FastAPI answer 400 "There
    # was an error parsing the body", a status the spec does not list for these routes.
    master, _ = shared_cluster
    before = _pool_count(master)
    bad = b"\r<\x1eb\xff-\xff"
    with master.client() as client:
        answers = [client.post(path, content=bad, headers={"content-type": "application/json"})
                   for path in ("/api/v1/pools", "/api/v1/tasks/methods/shoal_jobs/x")]
        pcci = client.post("/pcci/job", content=bad, headers={"content-type": "application/json"})
    for answer in answers:
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["message"].startswith("the request body could not be read as JSON (")
        assert "\n" not in error["message"]
    assert pcci.status_code == 400 and "JSON" in pcci.json()["message"]  # PCCI's own status
    assert _pool_count(master) == before


def test_what_the_api_accepts_the_worker_link_carries(shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    before = _pool_count(master)
    # Under the body limit, but its run message would be over the link's limit for a run.
    too_long = ["sh", "-c", "true", "sh", "a" * (MAX_RUN // 2), "b" * (MAX_RUN // 2)]
    with master.client() as client:
        refused = client.post("/api/v1/pools", json={"command": too_long, "workers": ["w1"]})
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "command_too_large"
    assert "over its limit of 256 KiB" in refused.json()["error"]["message"]
    assert _pool_count(master) == before
    # Just under it (two arguments, each under the kernel's 128 KiB per argument): it runs.
    fits = ["sh", "-c", 'echo "${#1} ${#2}"', "sh", "a" * 120_000, "b" * 120_000]
    pool = submit(master, fits, workers=["w1"])
    job = wait_pool_done(master, pool["id"])["jobs"][0]
    assert job["state"] == "exited" and job["exit_code"] == 0, job
    assert output(master, job["id"])["stdout"] == "120000 120000\n"


def test_a_command_may_be_one_string_split_as_a_shell_would_without_a_shell(
        shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    pool = submit(master, "sh -c 'printf \"%s|\" \"$@\"' sh 'a b' c\\ d '$HOME'",  # type: ignore[arg-type]
                  workers=["w2"])
    assert pool["command"] == ["sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "c d", "$HOME"]
    job = wait_pool_done(master, pool["id"])["jobs"][0]
    assert output(master, job["id"])["stdout"] == "a b|c d|$HOME|"
    with master.client() as client:
        for bad, why in (("echo 'open", "No closing quotation"), ("   ", "the command is empty")):
            answer = client.post("/api/v1/pools", json={"command": bad, "workers": ["w2"]})
            assert answer.status_code == 422, answer.text
            assert why in answer.json()["error"]["message"]


def test_pool_lists_are_summaries_a_page_at_a_time(shared_cluster: Cluster) -> None:
    master, _ = shared_cluster
    long_args = [f"{i:02d}" + "x" * 1000 for i in range(SUMMARY_ARGS + 5)]
    pool = submit(master, ["sh", "-c", "exit 3", "sh", *long_args], workers=["w1", "w2"])
    wait_pool_done(master, pool["id"])
    listed = master.api("GET", "/api/v1/pools", params={"limit": 5})
    summary = next(p for p in listed["items"] if p["id"] == pool["id"])
    assert summary["command_truncated"] is True
    assert len(summary["command"]) == SUMMARY_ARGS
    assert all(len(arg) <= SUMMARY_ARG_CHARS for arg in summary["command"])
    assert summary["command"][:4] == ["sh", "-c", "exit 3", "sh"]
    assert summary["jobs"] == 2 and summary["job_counts"] == {"exited": 2}
    assert summary["nonzero_exits"] == 2 and summary["outcome"] == "failed"
    assert "env" not in summary
    whole = master.api("GET", f"/api/v1/pools/{pool['id']}")
    assert whole["command"][4:] == long_args and whole["outcome"] == "failed"
    assert len(whole["jobs"]) == 2
    with master.client() as client:
        too_many = client.get("/api/v1/pools", params={"limit": MAX_PAGE + 1})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "invalid_request"


# -- memory ----------------------------------------------------------------------------

CAP = 768 << 20          # the master's address space (it uses some 270 MiB idle)
STORED_POOLS = 40        # each with a command of nearly the largest size accepted
CONCURRENT_GETS = 120


def _store_big_pools(master: Master) -> list[str]:
    """Large pools written straight into the master's database (as if submitted earlier)."""
    sessions = open_database(master.db_url)
    try:
        store = Store(sessions)
        worker = store.register_worker(str(uuid.uuid4()), {
            "name": "gone", "hostname": "gone", "cores": 1, "memory_total": 1, "platform": "",
            "shoal_version": "", "python_version": ""}, utcnow())
        store.set_worker_state(worker.id, "lost")
        command = ["sh", "-c", "true", "sh", *["z" * 100_000] * 2, "z" * 40_000]
        return [store.create_pool(command, [worker], env=None, cwd=None, timeout=None,
                                  submitted_by="earlier").id for _ in range(STORED_POOLS)]
    finally:
        sessions.kw["bind"].dispose()


async def _many_gets(master: Master, token: str, pool_ids: list[str]) -> list[int]:
    limits = httpx.Limits(max_connections=CONCURRENT_GETS)
    async with httpx.AsyncClient(base_url=master.url, timeout=120, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def one(i: int) -> int:
            path = "/api/v1/pools" if i % 2 else f"/api/v1/pools/{pool_ids[i % len(pool_ids)]}"
            response = await client.get(path, params={"limit": MAX_PAGE} if i % 2 else None)
            return response.status_code

        return list(await asyncio.gather(*(one(i) for i in range(CONCURRENT_GETS))))


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) << 10
    raise AssertionError("no VmHWM")


def test_a_read_token_cannot_make_the_masters_memory_grow_without_bound(
        start_master: Callable[..., Master]) -> None:
    master = start_master(address_space=CAP)
    pool_ids = _store_big_pools(master)
    reader = master.new_token("read", "curious")
    statuses = asyncio.run(_many_gets(master, reader, pool_ids))
    assert master.proc is not None and master.proc.poll() is None, master.log
    failed = {s: statuses.count(s) for s in set(statuses) if s != 200}
    assert not failed, f"answers other than 200: {failed}\n{master.log[-3000:]}"
    assert "MemoryError" not in master.log
    assert _peak_rss(master.proc.pid) < CAP
    listed = master.api("GET", "/api/v1/pools", params={"limit": MAX_PAGE})
    assert listed["total"] == STORED_POOLS
    assert all(p["command_truncated"] for p in listed["items"])
