"""Latency of bcast, allreduce and barrier at 2 and 4 ranks, small and 1 MiB payloads.

    python benchmarks/collectives.py [--quick]     # runs both runtimes, prints the table

Each case runs a batch of back-to-back operations between two barriers; a
batch's time per operation is the slowest rank's, and the figure is the
median over several batches (us).  The cases:

* barrier: ``comm.Barrier()``
* bcast object 8 B / 1 MiB: ``comm.bcast(bytes or ndarray, root=0)``
* Bcast 8 B / 1 MiB: ``comm.Bcast(uint8 array, root=0)``
* allreduce object: ``comm.allreduce(float, op=MPI.SUM)``
* Allreduce 8 B / 1 MiB: ``comm.Allreduce(float64 array, out, op=MPI.SUM)``

Note that on a 2-core machine 4 ranks are oversubscribed: a runtime whose
waiting ranks spin keeps the core from the rank that has work to do.

The same file is the MPI program (``--program``), started by the driver as

    python -m shoal run -n 4 benchmarks/collectives.py --program
    mpiexec -launcher fork -n 4 python benchmarks/collectives.py --program
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import Report, Row

RANKS = (2, 4)
MIB = 1 << 20
TARGET_SMALL = "<= 1.5"  # issue 14: small Allreduce, Bcast and Barrier at 2 and 4 ranks


def _small(case: str) -> bool:
    return case == "barrier" or (case.startswith(("Bcast", "Allreduce")) and case.endswith(" 8 B"))


CASES = ["barrier", "bcast object 8 B", "bcast object 1 MiB", "Bcast 8 B", "Bcast 1 MiB",
         "allreduce object", "Allreduce 8 B", "Allreduce 1 MiB"]


def program(argv: list[str]) -> None:
    import argparse

    import numpy as np

    from shoal import MPI

    parser = argparse.ArgumentParser()
    parser.add_argument("--program", action="store_true")
    parser.add_argument("--seconds", type=float, default=0.05, help="time of one batch")
    parser.add_argument("--batches", type=int, default=7)
    args = parser.parse_args(argv)

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    root = rank == 0

    small_bytes = b"12345678"
    big_array = (np.arange(MIB, dtype=np.int64) % 251).astype(np.uint8)
    small_buf = np.zeros(8, dtype=np.uint8)
    big_buf = big_array.copy()
    one, one_out = np.ones(1), np.zeros(1)
    many, many_out = np.ones(MIB // 8), np.zeros(MIB // 8)

    operations: dict[str, Callable[[], object]] = {
        "barrier": comm.Barrier,
        "bcast object 8 B": lambda: comm.bcast(small_bytes if root else None, root=0),
        "bcast object 1 MiB": lambda: comm.bcast(big_array if root else None, root=0),
        "Bcast 8 B": lambda: comm.Bcast(small_buf, root=0),
        "Bcast 1 MiB": lambda: comm.Bcast(big_buf, root=0),
        "allreduce object": lambda: comm.allreduce(1.5, op=MPI.SUM),
        "Allreduce 8 B": lambda: comm.Allreduce(one, one_out, op=MPI.SUM),
        "Allreduce 1 MiB": lambda: comm.Allreduce(many, many_out, op=MPI.SUM),
    }

    results: dict[str, float] = {}
    for case in CASES:
        operation = operations[case]
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(3):
            operation()
        per = (time.perf_counter() - start) / 3
        count = comm.bcast(int(min(20_000, max(3, args.seconds / per))), root=0)
        batches = []
        for _ in range(args.batches):
            comm.Barrier()
            t0 = time.perf_counter()
            for _ in range(count):
                operation()
            mine = (time.perf_counter() - t0) / count
            batches.append(comm.allreduce(mine, op=MPI.MAX))
        results[case] = float(np.median(batches)) * 1e6

    if rank == 0:
        print(json.dumps({"benchmark": "collectives", "ranks": comm.Get_size(),
                          "latency_us": results}), flush=True)


def measure(quick: bool) -> Report:
    report = Report("Collective latency (median over batches, slowest rank, us)")
    args = ["--program", "--seconds", "0.02" if quick else "0.05",
            "--batches", "3" if quick else "7"]
    report.raw = {}
    for ranks in RANKS:
        results = harness.run_program(report, ranks, Path(__file__).resolve(), args,
                                      timeout=300, rounds=1 if quick else 3)
        report.raw[str(ranks)] = results
        for case in CASES:
            shoal = harness.pick(results[harness.SHOAL], "latency_us", case)
            mpich = harness.pick(results[harness.MPICH], "latency_us", case)
            report.rows.append(Row("collectives", f"{case}, {ranks} ranks", "latency us",
                                   shoal, mpich, better="lower",
                                   target=TARGET_SMALL if _small(case) else ""))
    return report


if __name__ == "__main__":
    raise SystemExit(harness.script(program, measure))
