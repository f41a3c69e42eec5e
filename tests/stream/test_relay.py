"""Relay volunteers (Pando's fat tree): the root keeps --degree direct connections, later
volunteers go through a relay, and items are lent again at whichever level one is lost."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from stream_helpers import LIVENESS, module, monitor, start, stop, wait_for_url

VALUES = list(range(300))


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + LIVENESS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_children_of_a_relay_compute_and_losses_are_relent_at_each_level(tmp_path: Path):
    err = tmp_path / "stream.err"
    relay_err = tmp_path / "relay.err"
    with open(err, "w") as err_file:
        root = start("stream", module("steady"), *map(str, VALUES), "--start-idle",
                     "--degree", "1", "--bind", "127.0.0.1", stderr=err_file)
    others = []
    try:
        url = wait_for_url(err, root)
        with open(relay_err, "w") as relay_file:
            relay = start("volunteer", url, "--relay", "--bind", "127.0.0.1", "--name",
                          "R", stderr=relay_file)
        others.append(relay)
        relay_url = wait_for_url(relay_err, relay)
        wait_for(lambda: len(monitor(url)["volunteers"]) == 1, "the relay to join")
        children = [start("volunteer", url, "--name", f"child{i}") for i in range(2)]
        others += children
        # The root is at its degree: both children were sent to the relay, which computes
        # with a process of its own too.
        wait_for(lambda: [v["kind"] for v in monitor(relay_url)["volunteers"]].count(
            "machine") == 2, "two children")
        assert "process" in [v["kind"] for v in monitor(relay_url)["volunteers"]]
        assert [v["kind"] for v in monitor(url)["volunteers"]] == ["relay"]
        wait_for(lambda: monitor(url)["stream"]["released"] >= 30, "30 results")
        children[0].send_signal(signal.SIGKILL)          # lost below the relay
        wait_for(lambda: monitor(url)["stream"]["released"] >= 90, "90 results")
        relay.send_signal(signal.SIGKILL)                # the relay itself is lost
        wait_for(lambda: monitor(url)["volunteers"] == [], "the root to drop the relay")
        others.append(start("volunteer", url, "--name", "direct"))
        out, _ = root.communicate(timeout=LIVENESS)
    finally:
        stop(root)
        for proc in others:
            stop(proc)
    assert root.returncode == 0, err.read_text()
    assert out == "".join(f"{v * 3}\n" for v in VALUES)
    assert re.search(r"joined as v\d+", relay_err.read_text())
