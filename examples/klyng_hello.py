"""Hello in the klyng style: ``shoal.init(main)``, ``shoal.send``, ``shoal.recv``, ``shoal.end``.

The same program as klyng's JavaScript hello, in Python: every rank but 0
sends a greeting to rank 0; rank 0 takes them from any source, in whatever
order they come, and prints them sorted by rank.

Run it:

    shoal run -n 4 examples/klyng_hello.py
    mpiexec -n 4 python examples/klyng_hello.py   # the klyng calls then run on mpi4py

Prints, for 4 ranks:

    rank 0 of 4 heard: hello from rank 1 on HOST
    rank 0 of 4 heard: hello from rank 2 on HOST
    rank 0 of 4 heard: hello from rank 3 on HOST
"""

from __future__ import annotations

import socket

import shoal


def main() -> None:
    rank, size = shoal.rank(), shoal.size()
    if rank == 0:
        heard = [shoal.recv(source=shoal.ANY_SOURCE) for _ in range(size - 1)]
        # Messages arrive in any order; sort on the sender so the output doesn't vary.
        for sender, host in sorted(heard):
            print(f"rank 0 of {size} heard: hello from rank {sender} on {host}")
        if size == 1:
            print("rank 0 of 1 heard nobody: start more ranks (shoal run -n 4 ...)")
    else:
        shoal.send((rank, socket.gethostname()), 0)
    shoal.end()


shoal.init(main)
