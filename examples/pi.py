"""Pi by the midpoint rule: klyng's published benchmark task, split across ranks.

    pi = integral from 0 to 1 of 4 / (1 + x^2) dx
       ~ dx * sum over i of 4 / (1 + ((i + 0.5) dx)^2),   dx = 1 / intervals

The published size is dx = 2e-9, that is 500,000,000 intervals (the default).
Each rank takes one contiguous block of the intervals, sums it with a numpy
kernel a chunk at a time (so memory stays small), and ``comm.reduce`` adds the
partial sums on rank 0.  A pure-Python loop over 5e8 intervals would take
minutes; the numpy kernel takes about 1.3 s of CPU on one core, and it is the
same kernel whichever runtime (shoal or mpi4py on MPICH) runs it.

Run it:

    shoal run -n 4 examples/pi.py
    mpiexec -n 4 python examples/pi.py
    shoal run -n 2 examples/pi.py --intervals 1000000     # a quick one

Prints pi, the error against math.pi, and the largest CPU time of any rank
(MPCT: each process's own CPU time, start-up included, taken just before the
result is gathered).  ``--json`` adds one machine-readable line for the
benchmark driver.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from shoal import MPI

PUBLISHED_INTERVALS = 500_000_000  # dx = 2e-9
CHUNK = 1 << 18  # 2 MiB of float64: big enough for numpy, small enough for cache


def midpoint_sum(first: int, stop: int, dx: float) -> float:
    """Sum of 4 / (1 + x^2) at the midpoints of intervals first..stop-1 (not yet times dx)."""
    offsets = np.arange(CHUNK, dtype=np.float64) + 0.5
    x = np.empty(CHUNK, dtype=np.float64)
    total = 0.0
    for start in range(first, stop, CHUNK):
        n = min(CHUNK, stop - start)
        xs = x[:n]
        np.add(offsets[:n], float(start), out=xs)  # i + 0.5, exact in float64 below 2^52
        xs *= dx
        np.multiply(xs, xs, out=xs)
        xs += 1.0
        np.divide(4.0, xs, out=xs)
        total += float(xs.sum())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=PUBLISHED_INTERVALS,
                        help="number of intervals (default 5e8: dx = 2e-9)")
    parser.add_argument("--json", action="store_true", help="also print a JSON result line")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    dx = 1.0 / args.intervals

    work_cpu = time.process_time()
    first = args.intervals * rank // size
    stop = args.intervals * (rank + 1) // size
    partial = midpoint_sum(first, stop, dx) * dx
    work_cpu = time.process_time() - work_cpu

    pi = comm.reduce(partial, op=MPI.SUM, root=0)
    # The process's whole CPU time so far: interpreter start, imports, runtime
    # start-up and the work.  The largest over the ranks is the MPCT.
    cpu = comm.gather((time.process_time(), work_cpu), root=0)

    if rank == 0:
        assert pi is not None and cpu is not None
        error = abs(pi - math.pi)
        mpct = max(total for total, _ in cpu)
        work = max(w for _, w in cpu)
        print(f"pi ~ {pi:.15f} with {args.intervals} intervals on {size} ranks")
        print(f"error {error:.3e}; MPCT {mpct:.3f} s (largest rank CPU time, "
              f"of which work {work:.3f} s)", flush=True)
        if args.json:
            print(json.dumps({"task": "pi", "ranks": size, "intervals": args.intervals,
                              "value": pi, "error": error, "mpct": mpct, "work_cpu": work}),
                  flush=True)


if __name__ == "__main__":
    main()
