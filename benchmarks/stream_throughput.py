"""Streams: items/s and per-item overhead of `shoal stream`'s local volunteers, side by side
with multiprocessing.Pool.imap (ordered, chunksize = batch) and Dask (one task per batch).

    python benchmarks/stream_throughput.py [--quick] [--json FILE] [--baseline SRC]

1. A trivial function (x*x) with 1, 2 and 4 workers and each batch size: items/s and
   microseconds per item (what each system adds per item), and shoal / Pool.
2. Scaling efficiency for a CPU-bound function (~20 ms an item): T(1) / (n T(n)).
3. The whole command, start-up included: `shoal stream square --stdin` over N lines.

Every contender starts its workers before the clock starts (Pool and Dask are warmed up
with one small map; shoal's volunteers have said hello); each figure is the median of a
few repetitions.  On a shared 2-core machine 4 workers are oversubscribed, and figures are
noisy: compare ratios from the same run.  ``--baseline SRC`` measures the trivial function
with another checkout's ``src`` folder too (e.g. `git archive main src | tar -x -C
/tmp/base`), alternating with this one cell by cell, for before/after figures side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# SHOAL_BENCH_SRC: another checkout's src (--baseline runs this file again with it).
sys.path.insert(0, os.environ.get("SHOAL_BENCH_SRC") or str(HERE.parent / "src"))

import stream_functions

from shoal.stream.coordinator import Coordinator, Job
from shoal.stream.local import LocalPool
from shoal.stream.sinks import LinesSink
from shoal.stream.sources import ValuesSource

MODULE = str(HERE / "stream_functions.py")


class GatedValues(ValuesSource):
    """Values held back until every volunteer has joined, so start-up is not timed."""

    opened = False

    def start(self, wakeup: Any) -> None:
        self.wakeup = wakeup

    def take(self, count: int) -> list[Any]:
        return super().take(count) if self.opened else []


async def _shoal(n: int, workers: int, batch: int, function: str) -> float:
    # Not processor.load: importing the file again would replace the module Pool pickles by.
    job = Job("stream_functions", "", function, batch=batch,
              window=max(1024, 16 * batch * workers))   # as `shoal stream`: window_for
    out = io.BytesIO()
    source = GatedValues(range(n))
    coordinator = Coordinator(job, source, LinesSink(out))
    pool = LocalPool(coordinator, MODULE, capacity=batch)
    await pool.start(workers)
    run = asyncio.ensure_future(coordinator.run())
    while len(coordinator.members) < workers:
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    source.opened = True
    source.wakeup()
    status = await run
    elapsed = time.perf_counter() - started
    await asyncio.get_running_loop().run_in_executor(None, pool.close)
    assert status == 0
    return elapsed


def shoal_time(n: int, workers: int, batch: int, busy: bool = False) -> float:
    # The module's processor is stream_square; busy runs `busy` through a second module.
    return asyncio.run(_shoal(n, workers, batch, "busy" if busy else "stream_square"))


def pool_time(pool: Any, n: int, batch: int, busy: bool = False) -> float:
    function = stream_functions.busy if busy else stream_functions.square
    started = time.perf_counter()
    for _ in pool.imap(function, range(n), chunksize=batch):
        pass
    return time.perf_counter() - started


def dask_time(client: Any, n: int, batch: int, busy: bool = False) -> float:
    function = stream_functions.busy_chunk if busy else stream_functions.square_chunk
    chunks = [list(range(i, min(n, i + batch))) for i in range(0, n, batch)]
    started = time.perf_counter()
    futures = client.map(function, chunks, pure=False)
    for future in futures:    # in order, as a stream's consumer would
        future.result()
    return time.perf_counter() - started


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def trivial(sizes: dict[int, int], workers_list: list[int], repeats: int,
            use_dask: bool) -> list[dict[str, Any]]:
    rows = []
    for workers in workers_list:
        client = cluster = None
        if use_dask:
            from dask.distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            client.gather(client.map(stream_functions.square_chunk, [[1]] * workers))
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            list(pool.imap(stream_functions.square, range(100)))
            for batch, n in sizes.items():
                row: dict[str, Any] = {"workers": workers, "batch": batch, "items": n}
                row["shoal_s"] = median([shoal_time(n, workers, batch) for _ in range(repeats)])
                row["pool_s"] = median([pool_time(pool, n, batch) for _ in range(repeats)])
                if client is not None:
                    # Dask costs milliseconds a task: fewer items, the same per-item figure.
                    row["dask_items"] = min(n, 500 * batch)
                    row["dask_s"] = dask_time(client, row["dask_items"], batch)
                rows.append(row)
                print(format_row(row), flush=True)
        if client is not None and cluster is not None:
            client.close()
            cluster.close()
    return rows


def format_row(row: dict[str, Any]) -> str:
    n = row["items"]
    parts = [f"workers {row['workers']}  batch {row['batch']:>3}"]
    for name in ("shoal", "pool", "dask"):
        if f"{name}_s" in row:
            seconds = row[f"{name}_s"]
            n = row.get(f"{name}_items", row["items"])
            parts.append(f"{name} {n / seconds:>8.0f} items/s {seconds / n * 1e6:>7.1f} us/item")
    parts.append(f"shoal/pool {row['shoal_s'] / row['pool_s']:.2f}")
    return "  ".join(parts)


def scaling(n: int, workers_list: list[int]) -> list[dict[str, Any]]:
    rows = []
    base_shoal = base_pool = 0.0
    for workers in workers_list:
        shoal_s = shoal_time(n, workers, 1, busy=True)
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool_s = pool_time(pool, n, 1, busy=True)
        if workers == workers_list[0]:
            base_shoal, base_pool = shoal_s * workers, pool_s * workers
        row = {"workers": workers, "items": n, "shoal_s": shoal_s, "pool_s": pool_s,
               "shoal_efficiency": base_shoal / (workers * shoal_s),
               "pool_efficiency": base_pool / (workers * pool_s)}
        rows.append(row)
        print(f"busy x{n}: workers {workers}  shoal {shoal_s:.2f} s (efficiency "
              f"{row['shoal_efficiency']:.2f})  pool {pool_s:.2f} s (efficiency "
              f"{row['pool_efficiency']:.2f})", flush=True)
    return rows


def whole_command(n: int) -> dict[str, Any]:
    lines = "".join(f"{i}\n" for i in range(n))
    env = {**os.environ, "SHOAL_CONFIG_DIR": "/nonexistent-shoal-config"}
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "shoal", "stream", MODULE, "--stdin",
                               "--batch", "16", "--bind", "127.0.0.1"], input=lines,
                              capture_output=True, text=True, env=env, check=True)
        timings.append(time.perf_counter() - started)
        assert done.stdout.count("\n") == n
    seconds = median(timings)
    print(f"whole command, {n} lines, --batch 16, one worker per core: {seconds:.2f} s "
          f"({n / seconds:.0f} items/s, start-up included)", flush=True)
    return {"items": n, "seconds": seconds}


def baseline_cell(src: Path, n: int, workers: int, batch: int) -> float:
    """Seconds for one cell of the trivial table with another checkout's shoal."""
    done = subprocess.run([sys.executable, __file__, "--cell", f"{n},{workers},{batch}"],
                          env={**os.environ, "SHOAL_BENCH_SRC": str(src)},
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def before_after(src: Path, sizes: dict[int, int], repeats: int) -> list[dict[str, Any]]:
    """This checkout, the baseline and Pool.imap, cell by cell, in the same minutes."""
    rows = []
    print(f"before/after: baseline {src}; microseconds per item, medians of {repeats}",
          flush=True)
    for workers in (1, 2, 4):
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            list(pool.imap(stream_functions.square, range(100)))
            for batch, n in sizes.items():
                now, before, peer = [], [], []
                for _ in range(repeats):
                    now.append(shoal_time(n, workers, batch))
                    before.append(baseline_cell(src, n, workers, batch))
                    peer.append(pool_time(pool, n, batch))
                row = {"workers": workers, "batch": batch, "items": n,
                       "shoal_s": median(now), "baseline_s": median(before),
                       "pool_s": median(peer)}
                rows.append(row)
                us = {k: row[f"{k}_s"] / n * 1e6 for k in ("shoal", "baseline", "pool")}
                print(f"workers {workers}  batch {batch:>3}  shoal {us['shoal']:6.2f}  "
                      f"baseline {us['baseline']:6.2f}  pool {us['pool']:6.2f}  "
                      f"shoal/pool {row['shoal_s'] / row['pool_s']:.2f}  baseline/pool "
                      f"{row['baseline_s'] / row['pool_s']:.2f}  (target <= 1.5)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="another checkout's src folder: before/after, side by side")
    parser.add_argument("--cell", help=argparse.SUPPRESS)   # N,WORKERS,BATCH: one figure
    args = parser.parse_args()
    if args.cell:
        n, workers, batch = map(int, args.cell.split(","))
        print(shoal_time(n, workers, batch))
        return
    quick = args.quick
    sizes = {1: 3000 if quick else 10000, 16: 20000 if quick else 100000,
             64: 40000 if quick else 200000}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if args.baseline:
        rows = before_after(args.baseline.resolve(), sizes, 3)
        if args.json:
            Path(args.json).write_text(json.dumps({"before_after": rows}, indent=2))
        return
    results = {
        "trivial": trivial(sizes, [1, 2, 4], 1 if quick else 3, not args.no_dask),
        "scaling": scaling(8 if quick else 40, [1, 2, 4]),
        "command": whole_command(20000 if quick else 100000),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
