"""In the buffer a collective splits among the processes, [buf, count, TYPE] gives the count
per process, not the total (mpi4py's rule, which MPI's own signatures follow): Gather,
Scatter, Allgather, Alltoall, Reduce_scatter_block, their nonblocking twins, and a buffer
larger than needed, as mpi4py's own benchmarks pass. Any number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()

# The example: two ints each, into a buffer with room for more.
s = np.array([rank, rank + 100], dtype="i")
big = np.full(2 * size + 3, -1, dtype="i")
world.Allgather([s, 2, MPI.INT], [big, 2, MPI.INT])
assert list(big[:2 * size]) == [v for r in range(size) for v in (r, r + 100)], big
assert (big[2 * size:] == -1).all(), big  # nothing past the count per process

# The same through bytes, as osu_allgather.py does: IN_PLACE, count per process in bytes.
raw = bytearray(8 * size + 5)
raw[8 * rank:8 * rank + 8] = bytes([rank]) * 8
world.Allgather(MPI.IN_PLACE, [raw, 8, MPI.BYTE])
assert bytes(raw[:8 * size]) == b"".join(bytes([r]) * 8 for r in range(size)), raw

for root in range(size):
    out = np.full(3 * size + 1, -1, dtype="d")
    world.Gather([np.full(3, rank, dtype="d"), 3, MPI.DOUBLE],
                 [out, 3, MPI.DOUBLE] if rank == root else None, root=root)
    if rank == root:
        assert list(out[:3 * size]) == [r for r in range(size) for _ in range(3)], out
        assert out[-1] == -1, out
    got = np.full(4, -1, dtype="l")
    source = np.repeat(np.arange(size), 2).astype("l")
    world.Scatter([source, 2, MPI.LONG] if rank == root else None, [got, 2, MPI.LONG],
                  root=root)
    assert list(got) == [rank, rank, -1, -1], got

send = np.array([rank * 10 + r for r in range(size) for _ in range(2)], dtype="i")
recv = np.full(2 * size + 2, -1, dtype="i")
world.Alltoall([send, 2, MPI.INT], [recv, 2, MPI.INT])
assert list(recv[:2 * size]) == [r * 10 + rank for r in range(size) for _ in range(2)], recv
assert list(recv[2 * size:]) == [-1, -1], recv

out = np.full(3, -1, dtype="i")
world.Reduce_scatter_block([np.ones(2 * size, dtype="i"), 2, MPI.INT], [out, 2, MPI.INT])
assert list(out) == [size, size, -1], out

# The nonblocking collectives read their buffers the same way.
big = np.full(2 * size + 1, -1, dtype="i")
world.Iallgather([s, 2, MPI.INT], [big, 2, MPI.INT]).Wait()
assert list(big[:2 * size]) == [v for r in range(size) for v in (r, r + 100)], big
recv = np.full(2 * size, -1, dtype="i")
world.Ialltoall([send, 2, MPI.INT], [recv, 2, MPI.INT]).Wait()
assert list(recv) == [r * 10 + rank for r in range(size) for _ in range(2)], recv

assert world.allreduce(1) == size
if rank == 0:
    print("explicit_counts ok", flush=True)
