"""Pando's fat tree, made real (issue 12, Pando): relays compute, relays join relays once the
root is full, and a tree of three levels with 52 volunteers (machines, and browser tabs at
two levels) prints every item once and in order while a relay of the first level, with all
its subtree, is killed mid-stream.

    root (degree 4) ── R1 ── R11 ── leaves, a browser tab
         │          │    └─ leaves
         ├── R2 ── R21 ── leaves
         │    └─ leaves
         ├── leaves, a browser tab

Volunteers are threads of two processes (tests/stream/volunteer_threads.py), each on its own
WebSocket, as `shoal volunteer URL` would be.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stream_helpers import env, module, monitor, monitor_lines, start, stop, wait_for_url
from volunteer_browser import chromium, need_pyodide

HERE = Path(__file__).parent
ITEMS = 2500


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def kinds(url: str) -> list[str]:
    try:
        return [v["kind"] for v in monitor(url)["volunteers"]]
    except OSError:
        return []   # a relay that was killed


class Tree:
    """Everything the test starts, stopped whatever happens."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[Any]] = []

    def relay(self, url: str, name: str) -> tuple[subprocess.Popen[Any], str]:
        err = self.tmp_path / f"{name}.err"
        with open(err, "w") as err_file:
            proc = start("volunteer", url, "--relay", "--bind", "127.0.0.1", "--degree", "4",
                         "--name", name, stderr=err_file)
        self.procs.append(proc)
        return proc, wait_for_url(err, proc)

    def volunteers(self, url: str, count: int, prefix: str) -> None:
        with open(self.tmp_path / f"{prefix}.err", "w") as err_file:
            self.procs.append(subprocess.Popen(
                [sys.executable, str(HERE / "volunteer_threads.py"), url, str(count), prefix],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_file,
                env=env()))

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


def test_a_three_level_tree_keeps_every_item_once_in_order_when_a_relay_dies(tmp_path: Path):
    need_pyodide()
    err = tmp_path / "root.err"
    with open(err, "w") as err_file:
        root = start("stream", module("tree_item"), "--stdin", "--start-idle", "--bind",
                     "127.0.0.1", "--degree", "4", "--batch", "2", "--monitor-log",
                     "--reporting-interval", "0.5", stdin=subprocess.PIPE, stderr=err_file)
    tree = Tree(tmp_path)
    try:
        url = wait_for_url(err, root)
        # Level 1: two relays and two volunteers fill the root's degree.
        r1, r1_url = tree.relay(url, "R1")
        _, r2_url = tree.relay(url, "R2")
        wait_until(lambda: kinds(url).count("relay") == 2, "R1 and R2 under the root")
        tree.volunteers(url, 2, "top")
        wait_until(lambda: kinds(url).count("machine") == 2, "two volunteers at the root")
        # Level 2: the root is full, so new relays are sent to R1 and R2.
        _, r11_url = tree.relay(url, "R11")
        _, r21_url = tree.relay(url, "R21")
        wait_until(lambda: "relay" in kinds(r1_url) and "relay" in kinds(r2_url),
                   "R11 under R1 and R21 under R2")
        # Level 3: 48 more volunteers go down the tree, R1 and R2 being full in turn.
        tree.volunteers(url, 24, "a")
        tree.volunteers(url, 24, "b")
        relays = (url, r1_url, r2_url, r11_url, r21_url)
        wait_until(lambda: sum(kinds(u).count("machine") for u in relays) == 50,
                   "50 volunteers in the tree")
        assert kinds(r11_url).count("machine") and kinds(r21_url).count("machine")
        with chromium() as browser:
            tabs = [browser.new_page(), browser.new_page()]
            tabs[0].goto(r11_url)   # a tab at the third level, under the relay to kill
            tabs[1].goto(url)       # a tab at the root
            wait_until(lambda: "browser" in kinds(r11_url) and "browser" in kinds(url),
                       "the two tabs to join", timeout=90)
            assert root.stdin is not None
            root.stdin.write("".join(f"{i}\n" for i in range(ITEMS)))
            root.stdin.close()
            root.stdin = None   # closed: communicate() below only reads
            wait_until(lambda: monitor(url)["stream"]["released"] >= ITEMS // 4,
                       "a quarter of the results")
            r1.send_signal(signal.SIGKILL)   # R1, R11 below it, and their volunteers
            out, _ = root.communicate(timeout=120)
            for tab in tabs:
                tab.close()
    finally:
        stop(root)
        tree.close()
    assert root.returncode == 0, err.read_text()[-3000:]
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [str(i) for i in range(ITEMS)]
    where = {line.split()[1] for line in lines}
    assert where == {"linux", "emscripten"}   # processes, machines and tabs all computed
    assert monitor_lines(err.read_text())[-1]["relent"] >= 1   # R1's items, lent again


def test_a_relay_computes_too(tmp_path: Path):
    """A relay with no children computes the whole stream with its own process."""
    err = tmp_path / "root.err"
    with open(err, "w") as err_file:
        root = start("stream", module("tree_item"), *map(str, range(40)), "--start-idle",
                     "--bind", "127.0.0.1", stderr=err_file)
    tree = Tree(tmp_path)
    try:
        url = wait_for_url(err, root)
        tree.relay(url, "R")
        out, _ = root.communicate(timeout=60)
    finally:
        stop(root)
        tree.close()
    assert root.returncode == 0, err.read_text()
    assert out.splitlines() == [f"{i} linux" for i in range(40)]


def test_a_relay_serves_one_stream_after_another_on_a_stream_server(tmp_path: Path):
    err = tmp_path / "server.err"
    with open(err, "w") as err_file:
        server = start("stream-server", "--port", "0", "--bind", "127.0.0.1", stderr=err_file)
    tree = Tree(tmp_path)
    try:
        url = wait_for_url(err, server)
        _, relay_url = tree.relay(url, "R")
        tree.volunteers(relay_url, 2, "child")   # its children, joined at the relay itself
        wait_until(lambda: "relay" in kinds(url) or monitor(url)["waiting_volunteers"],
                   "the relay to wait for a stream")
        for count in (30, 20):
            done = subprocess.run([sys.executable, "-m", "shoal", "stream", module("tree_item"),
                                   *map(str, range(count)), "--server", url],
                                  capture_output=True, text=True, timeout=60, env=env())
            assert done.returncode == 0, done.stderr
            assert done.stdout.splitlines() == [f"{i} linux" for i in range(count)]
            relayed = (tmp_path / "R.err").read_text().count("joined as")
        assert relayed == 2   # the relay joined both streams
    finally:
        stop(server)
        tree.close()
