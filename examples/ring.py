"""A token goes round the ring of ranks a number of times; rank 0 times the laps.

Shows blocking point-to-point messages (``comm.send`` / ``comm.recv`` of a Python
int) and ``MPI.Wtime``.  Each rank adds one to the token as it passes it on, so
after ``--laps`` laps the token must equal ``laps * size``.

Run it:

    shoal run -n 4 examples/ring.py --laps 1000
    mpiexec -n 4 python examples/ring.py --laps 1000

Prints, for example:

    token 4000 after 1000 laps of 4 ranks (expected 4000): ok
    1000 laps in 0.052 s: 13.0 us per hop
"""

from __future__ import annotations

import argparse

from shoal import MPI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laps", type=int, default=1000, help="times round the ring")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    after, before = (rank + 1) % size, (rank - 1) % size

    comm.Barrier()
    start = MPI.Wtime()
    token = 0
    for _ in range(args.laps):
        if rank == 0:
            # Rank 0 starts each lap and ends it.  isend, not send: with one
            # rank it sends to itself, and a blocking send to self may wait
            # for a receive that comes only after it.
            request = comm.isend(token + 1, dest=after)
            token = comm.recv(source=before)
            request.wait()
        else:
            token = comm.recv(source=before)
            comm.send(token + 1, dest=after)
    elapsed = MPI.Wtime() - start

    if rank == 0:
        expected = args.laps * size
        verdict = "ok" if token == expected else "WRONG"
        hops = args.laps * size
        print(f"token {token} after {args.laps} laps of {size} ranks "
              f"(expected {expected}): {verdict}")
        print(f"{args.laps} laps in {elapsed:.3f} s: {elapsed / hops * 1e6:.1f} us per hop",
              flush=True)


if __name__ == "__main__":
    main()
