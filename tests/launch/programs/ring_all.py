"""Each rank passes its number to the next around the ring and sums every rank's: the
ranks' descriptors (doorbells, shared memory) all work.  Prints "RANK got LEFT sum SUM"."""

from shoal import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
left = comm.sendrecv(rank, dest=(rank + 1) % size, source=(rank - 1) % size)
total = comm.allreduce(rank)
print(f"{rank} got {left} sum {total}")
