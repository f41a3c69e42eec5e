"""Hello, ring of ranks: every rank greets the next one; rank 0 prints them all in order.

Shows the mpi4py-style API (``from shoal import MPI``): point-to-point ``sendrecv``
of Python objects and ``gather`` to rank 0, so the output comes out in rank order
whatever order the processes ran in.

Run it:

    shoal run -n 4 examples/hello.py
    mpiexec -n 4 python examples/hello.py      # the same file on MPICH, through mpi4py

Prints, for 4 ranks:

    rank 0 of 4 on HOST got hello from rank 3
    rank 1 of 4 on HOST got hello from rank 0
    ...
"""

from __future__ import annotations

import socket

from shoal import MPI


def main() -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    after, before = (rank + 1) % size, (rank - 1) % size

    # sendrecv rather than send-then-recv: no rank waits for a receive that is
    # only posted after its own send has gone, whatever the message size.
    greeting = comm.sendrecv(f"hello from rank {rank}", dest=after, source=before)
    line = f"rank {rank} of {size} on {socket.gethostname()} got {greeting}"

    lines = comm.gather(line, root=0)
    if rank == 0:
        assert lines is not None
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
