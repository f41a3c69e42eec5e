"""A stream-server's per-item cost against the coordinator `shoal stream` embeds (issue 14,
item 4): one `shoal volunteer` at --batch 1, a trivial function, N items.

    python benchmarks/stream_server.py [--quick] [--baseline SRC]

Three ways to run the same stream, each the median of alternating repetitions:

* local:    `shoal stream --workers 1` (one local process over a pipe);
* embedded: `shoal stream --workers 0` with one `shoal volunteer URL` (WebSocket);
* server:   `shoal stream-server`, one `shoal volunteer URL`, and `shoal stream --server URL`.

Time per item is taken from the results as they come out of `shoal stream` (from the 10th
to the last), so that start-up and joining are not counted.  ``--baseline SRC`` runs the
same three with another checkout's ``src`` folder (e.g. `git archive main src | tar -x -C
/tmp/base`) in the same minutes, for before/after figures side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
MODULE = HERE / "stream_functions.py"
SKIP = 10   # results before the clock starts


def environment(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "SHOAL_CONFIG_DIR": "/nonexistent-config",
            "PYTHONUNBUFFERED": "1"}


def shoal(src: Path, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "shoal", *args], text=True,
                            env=environment(src), **kwargs)  # type: ignore[call-overload]


def wait_for_url(path: Path, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"http://127\.0\.0\.1:\d+/", path.read_text())
        if found:
            return found.group(0)
        if proc.poll() is not None:
            raise RuntimeError(path.read_text())
        time.sleep(0.02)
    raise RuntimeError("no URL")


@contextlib.contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def per_item(stream: subprocess.Popen[str], n: int) -> float:
    """Seconds per item from the result lines' arrival times."""
    assert stream.stdout is not None
    times = []
    for _ in stream.stdout:
        times.append(time.perf_counter())
    assert stream.wait(60) == 0 and len(times) == n, (len(times), stream.returncode)
    return (times[-1] - times[SKIP - 1]) / (n - SKIP)


def server_option(src: Path) -> str:
    """`--server` today; `--host` before the CLI vocabulary changed it."""
    text = (src / "shoal" / "cli" / "stream.py").read_text()
    return "--server" if '"--server"' in text else "--host"


def run_local(src: Path, n: int, folder: Path) -> float:
    items = "".join(f"{i}\n" for i in range(n))
    with running(shoal(src, "stream", str(MODULE), "--stdin", "--workers", "1", "--bind",
                       "127.0.0.1", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)) as stream:
        assert stream.stdin is not None
        stream.stdin.write(items)
        stream.stdin.close()
        return per_item(stream, n)


def run_embedded(src: Path, n: int, folder: Path) -> float:
    err = folder / "embedded.err"
    items = "".join(f"{i}\n" for i in range(n))
    with open(err, "w") as err_file, running(shoal(
            src, "stream", str(MODULE), "--stdin", "--workers", "0", "--start-idle",
            "--bind", "127.0.0.1", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=err_file)) as stream:
        url = wait_for_url(err, stream)
        assert stream.stdin is not None
        stream.stdin.write(items)
        stream.stdin.close()
        with running(shoal(src, "volunteer", url, "--quiet", "--once")):
            return per_item(stream, n)


def run_server(src: Path, n: int, folder: Path) -> float:
    err = folder / "server.err"
    items = "".join(f"{i}\n" for i in range(n))
    with open(err, "w") as err_file, running(shoal(
            src, "stream-server", "--port", "0", "--bind", "127.0.0.1",
            stderr=err_file)) as server:
        url = wait_for_url(err, server)
        with running(shoal(src, "volunteer", url, "--quiet")):
            time.sleep(0.5)   # joined: waiting for the stream
            with running(shoal(src, "stream", str(MODULE), "--stdin", server_option(src), url,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)) as stream:
                assert stream.stdin is not None
                stream.stdin.write(items)
                stream.stdin.close()
                return per_item(stream, n)


WAYS = {"local": run_local, "embedded": run_embedded, "server": run_server}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="another checkout's src folder, measured in the same run")
    args = parser.parse_args()
    n, repeats = (300, 3) if args.quick else (1000, 5)
    trees = {"this": SRC}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.2f}; {n} items, --batch 1, one volunteer", flush=True)
    samples: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):   # alternating: the machine's load hits every figure alike
            for tree, src in trees.items():
                for way, run in WAYS.items():
                    samples.setdefault((tree, way), []).append(run(src, n, Path(tmp)))
    for tree in trees:
        figures = {way: statistics.median(samples[(tree, way)]) * 1e3 for way in WAYS}
        print(f"{tree:>8}: " + "  ".join(f"{way} {ms:.2f} ms/item" for way, ms in
                                         figures.items())
              + f"  server/embedded {figures['server'] / figures['embedded']:.2f}"
              + "  (target <= 1.5)", flush=True)


if __name__ == "__main__":
    main()
