"""``/api/v1/events``: workers, pools and jobs as they change, over SSE."""

from __future__ import annotations

import json
import threading
from typing import Any

from cluster_helpers import Master, Worker, submit


def test_the_event_stream_tells_a_pools_life_as_it_happens(
        shared_cluster: tuple[Master, list[Worker]]) -> None:
    master, _ = shared_cluster
    seen: list[tuple[str, Any]] = []
    connected = threading.Event()

    def listen() -> None:
        with master.client("") as client, client.stream(
                "GET", "/api/v1/events", params={"token": master.token}) as response:
            kind = ""
            for line in response.iter_lines():
                connected.set()
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    seen.append((kind, json.loads(line[6:])))
                    if kind == "pool" and seen[-1][1]["state"] == "done":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(20)
    pool = submit(master, ["sh", "-c", "exit 5"], workers=["w2"])
    listener.join(30)
    assert not listener.is_alive(), f"no end of the pool among {seen}"
    mine = [(k, d) for k, d in seen if d.get("pool_id", d.get("id")) == pool["id"]]
    states = [d["state"] for k, d in mine if k == "job"]
    assert states[-1] == "exited" and "running" in states
    assert mine[0] == ("pool", mine[0][1]) and mine[-1][1]["state"] == "done"
    final = mine[-1][1]  # pools come as summaries: counts, not job rows
    assert final["outcome"] == "failed" and final["nonzero_exits"] == 1
    assert final["job_counts"] == {"exited": 1} and final["jobs"] == 1
    assert [d["exit_code"] for k, d in mine if k == "job"][-1] == 5
    workers = [d for k, d in seen if k == "worker"]
    assert all(w["name"] in ("w1", "w2") for w in workers)
