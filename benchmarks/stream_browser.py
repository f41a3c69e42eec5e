"""Streams: a browser volunteer's throughput against one local process volunteer.

    python benchmarks/stream_browser.py [--quick] [--json FILE]

The same `shoal stream MODULE --stdin` runs with one volunteer each time:
- process: one local process volunteer (`--workers 1`, a socketpair to the coordinator);
- machine: one `shoal volunteer URL` (`--workers 0`): native Python over the WebSocket that
  browsers use too, which tells the WebSocket path's cost from Pyodide's;
- browser: one headless Chromium tab (`--workers 0`) computing with Pyodide in a Web Worker;

- a trivial function (x*x): what is left is the per-item cost of each volunteer's path
  (for the tab: WebSocket, postMessage to the worker, JSON into and out of Pyodide);
- a CPU-bound pure-Python function (the loop of benchmarks/stream_functions.busy, about
  20 ms an item natively): WebAssembly CPython against native CPython.

Items/s is measured on the stream's own output: the time stamps at which result lines reach
this process, between the 10th and the 90th percentile of lines, so neither volunteer's
start-up (a Python process, or ~3 s of loading Pyodide) is counted; the tab's Pyodide load
time is reported apart. For the CPU-bound function the median time between two results is
printed too: one item's time end to end, which shrugs off bursts of other load. One run each, on
whatever else the machine is doing: on a shared 2-core VM compare ratios, not absolute figures.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

TRIVIAL = "def process(x):\n    return x * x\n"
BUSY = '''
def process(x):
    total = 0
    for i in range(300_000):  # as benchmarks/stream_functions.busy
        total += i ^ x
    return total & 0xFFFF
'''


def expected(function: str, x: int) -> int:
    if function == "trivial":
        return x * x
    total = 0
    for i in range(300_000):
        total += i ^ x
    return total & 0xFFFF


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def run_stream(module: Path, n: int, batch: int, who: str, browser: Any,
               env: dict[str, str]) -> tuple[list[str], list[float], float | None]:
    """Output lines, their arrival times, and the tab's Pyodide load time (None unless
    ``who`` is "browser")."""
    command = [sys.executable, "-m", "shoal", "stream", str(module), "--stdin",
               "--batch", str(batch), "--workers", "1" if who == "process" else "0"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, bufsize=1)
    assert process.stdin and process.stdout and process.stderr
    stderr: list[str] = []

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write("".join(f"{i}\n" for i in range(n)))  # type: ignore[union-attr]
            process.stdin.close()  # type: ignore[union-attr]

    def drain_stderr() -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            stderr.append(line)

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=drain_stderr, daemon=True)]
    for thread in threads:
        thread.start()
    page = None
    machine = None
    load_seconds = None
    try:
        if who != "process":
            deadline = time.monotonic() + 60
            url = None
            while url is None:
                found = re.search(r"https?://\S+?/(?=\s|$)", "".join(stderr))
                url = found.group(0) if found else None
                if url is None and (time.monotonic() > deadline or process.poll() is not None):
                    raise RuntimeError(f"shoal stream printed no URL: {''.join(stderr)}")
                time.sleep(0.05)
            if who == "browser":
                page = browser.new_page()
                page.goto(url)
            else:
                machine = subprocess.Popen([sys.executable, "-m", "shoal", "volunteer", url],
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, env=env)
        lines: list[str] = []
        stamps: list[float] = []
        for line in process.stdout:
            stamps.append(time.perf_counter())
            lines.append(line.rstrip("\n"))
        status = process.wait(timeout=600)
        if status != 0:
            raise RuntimeError(f"shoal stream exited {status}: {''.join(stderr)}")
        if page is not None:
            log = page.locator("#log").text_content() or ""
            found = re.search(r"loaded in ([0-9.]+) s", log)
            load_seconds = float(found.group(1)) if found else None
    finally:
        if page is not None:
            page.close()
        for child in (process, machine):
            if child is not None and child.poll() is None:
                child.kill()
            if child is not None:
                child.wait()
    return lines, stamps, load_seconds


def median_gap(stamps: list[float]) -> float:
    """Median time between two results, in seconds: with batch 1 and one volunteer, the time
    one item takes end to end, robust to the bursts of load other processes cause."""
    low, high = len(stamps) // 10, (len(stamps) * 9) // 10
    window = stamps[low:high + 1]
    return statistics.median(b - a for a, b in itertools.pairwise(window))


def rate(stamps: list[float]) -> float:
    """Items per second between the 10th and the 90th percentile of result lines."""
    low, high = len(stamps) // 10, (len(stamps) * 9) // 10
    elapsed = stamps[high] - stamps[low]
    return (high - low) / elapsed if elapsed > 0 else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer items")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args()
    from shoal.stream.web import ensure_pyodide

    ensure_pyodide()
    scale = 0.25 if args.quick else 1.0
    cases = [("trivial", 1, int(4000 * scale)), ("trivial", 32, int(20000 * scale)),
             ("cpu-bound", 1, int(120 * scale))]
    rows = []
    with tempfile.TemporaryDirectory() as folder, chromium() as browser:
        config = Path(folder) / "config"
        config.mkdir()
        env = {**os.environ, "SHOAL_CONFIG_DIR": str(config)}  # no user's stream.toml
        modules = {"trivial": Path(folder) / "trivial.py", "cpu-bound": Path(folder) / "busy.py"}
        modules["trivial"].write_text(TRIVIAL)
        modules["cpu-bound"].write_text(BUSY)
        for function, batch, n in cases:
            row: dict[str, Any] = {"function": function, "batch": batch, "items": n}
            for who in ("process", "machine", "browser"):
                lines, stamps, load = run_stream(modules[function], n, batch, who, browser, env)
                check = range(0, n, max(1, n // 50))
                wrong = [i for i in check if int(lines[i]) != expected(function, i)]
                if len(lines) != n or wrong:
                    raise RuntimeError(f"{who}: wrong output ({len(lines)} lines, bad {wrong})")
                row[f"{who}_items_per_s"] = rate(stamps)
                if function == "cpu-bound":  # quick items' lines arrive in bursts: no gap
                    row[f"{who}_median_item_ms"] = 1e3 * median_gap(stamps)
                if load is not None:
                    row["pyodide_load_s"] = load
            row["browser_over_process"] = row["browser_items_per_s"] / row["process_items_per_s"]
            rows.append(row)
            print(f"{function:9} batch {batch:3} ({n} items): process "
                  f"{row['process_items_per_s']:9.1f} items/s, machine "
                  f"{row['machine_items_per_s']:9.1f} items/s, browser "
                  f"{row['browser_items_per_s']:9.1f} items/s, browser/process "
                  f"{row['browser_over_process']:.2f} (Pyodide loaded in "
                  f"{row.get('pyodide_load_s') or float('nan'):.1f} s)", flush=True)
    print()
    print("| function | batch | items | items/s: process | machine (WebSocket) | browser "
          "| browser / process | per item: process | machine | browser |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['function']} | {row['batch']} | {row['items']} "
              f"| {row['process_items_per_s']:.1f} | {row['machine_items_per_s']:.1f} "
              f"| {row['browser_items_per_s']:.1f} | {row['browser_over_process']:.2f} "
              f"| {1e6 / row['process_items_per_s']:.0f} us "
              f"| {1e6 / row['machine_items_per_s']:.0f} us "
              f"| {1e6 / row['browser_items_per_s']:.0f} us |")
    print()
    print("CPU-bound, median time per item (result to result), in ms:")
    for row in rows:
        if row["function"] == "cpu-bound":
            process, machine = row["process_median_item_ms"], row["machine_median_item_ms"]
            tab = row["browser_median_item_ms"]
            print(f"  {row['function']}: process {process:.3f}, machine {machine:.3f}, "
                  f"browser {tab:.3f} (browser / process {tab / process:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
