"""Job output: whole, from an offset, streamed live (SSE), megabytes in tiny pieces."""

from __future__ import annotations

import json
from typing import Any

from cluster_helpers import Master, Worker, output, submit, wait_pool_done


def read_sse(master: Master, path: str) -> list[tuple[str, Any]]:
    """The events of an SSE stream until it ends."""
    events: list[tuple[str, Any]] = []
    with master.client() as client, client.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


def test_a_jobs_output_streams_live_from_the_start_until_its_end(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    script = "echo one; sleep 0.5; echo two >&2; sleep 0.5; printf 'thr\\303\\251e'; exit 4"
    pool = submit(master, ["sh", "-c", script], workers=["w1"])
    job_id = pool["jobs"][0]["id"]
    events = read_sse(master, f"/api/v1/jobs/{job_id}/stream")
    assert events[-1][0] == "end" and events[-1][1]["exit_code"] == 4
    text = {"stdout": "", "stderr": ""}
    for kind, data in events[:-1]:
        assert kind == "output"
        text[data["stream"]] += data["data"]
    assert text == {"stdout": "one\nthrée", "stderr": "two\n"}
    again = read_sse(master, f"/api/v1/jobs/{job_id}/stream")  # a finished job: all, then end
    assert "".join(d["data"] for k, d in again if k == "output" and d["stream"] == "stdout") \
        == "one\nthrée"


def test_output_is_read_on_from_the_offsets_returned(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    pool = submit(master, ["sh", "-c", "printf abc; printf XY >&2"], workers=["w2"])
    job_id = wait_pool_done(master, pool["id"])["jobs"][0]["id"]
    first = master.api("GET", f"/api/v1/jobs/{job_id}/output", params={"offset": 1})
    assert (first["stdout"], first["stderr"]) == ("bc", "Y")
    only = master.api("GET", f"/api/v1/jobs/{job_id}/output",
                      params={"stream": "stderr", "offset_stderr": 0})
    assert only["stdout"] == "" and only["stderr"] == "XY" and only["offset_stderr"] == 2


def test_megabytes_written_a_few_bytes_at_a_time_arrive_whole(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    # 2 MiB in 7-byte writes, each flushed: some 300,000 tiny pieces at the pipe
    program = ("import sys\n"
               "for i in range(300_000):\n"
               "    sys.stdout.write(f'{i % 100000:06d}\\n'); sys.stdout.flush()\n")
    pool = submit(master, ["python3", "-c", program], workers=["w1"])
    job = wait_pool_done(master, pool["id"], within=90)["jobs"][0]
    assert job["exit_code"] == 0
    expected = "".join(f"{i % 100000:06d}\n" for i in range(300_000))
    first = master.api("GET", f"/api/v1/jobs/{job['id']}/output")  # 1 MiB at most a time
    assert first["truncated"] and first["stdout"] == expected[:1 << 20]
    assert first["offset_stdout"] == 1 << 20
    got: dict[str, Any] = output(master, job["id"])  # the helper pages through
    assert len(got["stdout"]) == len(expected) and got["stdout"] == expected
