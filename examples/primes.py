"""Count the primes below a limit by trial division: klyng's other benchmark task.

The published size is 10^7 (664,579 primes below it, the default).  The numbers
are cut into chunks of 65,536 that are dealt to the ranks in turn (chunk k goes
to rank k mod size), which balances the work better than one block per rank
because bigger numbers need more trial divisors.  ``comm.reduce`` adds the
counts on rank 0.

The kernel is trial division, vectorised with numpy: the odd candidates of a
chunk are divided by each prime p up to the square root of the chunk's top, and
those that p divides (other than p itself) are dropped before the next p, so
the survivors get fewer with every divisor.  A plain-Python loop doing the same
divisions number by number takes minutes for 10^7 on one core; this takes about
1.5 s, and it is the same kernel whichever runtime (shoal or mpi4py on MPICH)
runs it.

Run it:

    shoal run -n 4 examples/primes.py
    mpiexec -n 4 python examples/primes.py
    shoal run -n 2 examples/primes.py --limit 100000     # 9592 primes

Prints the count and the largest CPU time of any rank (MPCT); ``--json`` adds
one machine-readable line for the benchmark driver.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from shoal import MPI

PUBLISHED_LIMIT = 10**7
CHUNK = 1 << 16


def small_primes(limit: int) -> list[int]:
    """Primes up to ``limit`` inclusive, by plain trial division (limit is only ~sqrt(10^7))."""
    primes: list[int] = []
    for n in range(2, limit + 1):
        for p in primes:
            if p * p > n:
                primes.append(n)
                break
            if n % p == 0:
                break
        else:
            primes.append(n)  # only n = 2 and 3 get here: no prime p with p*p > n yet
    return primes


def count_in_chunk(lo: int, hi: int, divisors: list[int]) -> int:
    """How many primes n satisfy lo <= n < hi."""
    count = 1 if lo <= 2 < hi else 0
    candidates = np.arange(max(lo, 3) | 1, hi, 2, dtype=np.int64)  # odd numbers only
    for p in divisors:
        if p == 2:
            continue
        if p * p >= hi:
            break
        candidates = candidates[(candidates % p != 0) | (candidates == p)]
    return count + int(candidates.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=PUBLISHED_LIMIT,
                        help="count primes below this (default 10^7)")
    parser.add_argument("--json", action="store_true", help="also print a JSON result line")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    work_cpu = time.process_time()
    divisors = small_primes(math.isqrt(args.limit) + 1)
    mine = 0
    for k, lo in enumerate(range(0, args.limit, CHUNK)):
        if k % size == rank:
            mine += count_in_chunk(lo, min(lo + CHUNK, args.limit), divisors)
    work_cpu = time.process_time() - work_cpu

    count = comm.reduce(mine, op=MPI.SUM, root=0)
    cpu = comm.gather((time.process_time(), work_cpu), root=0)

    if rank == 0:
        assert count is not None and cpu is not None
        mpct = max(total for total, _ in cpu)
        work = max(w for _, w in cpu)
        print(f"{count} primes below {args.limit} on {size} ranks")
        print(f"MPCT {mpct:.3f} s (largest rank CPU time, of which work {work:.3f} s)",
              flush=True)
        if args.json:
            print(json.dumps({"task": "primes", "ranks": size, "limit": args.limit,
                              "value": count, "mpct": mpct, "work_cpu": work}), flush=True)


if __name__ == "__main__":
    main()
