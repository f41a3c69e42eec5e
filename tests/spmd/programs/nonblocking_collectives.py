"""Nonblocking collectives (Ibarrier, Ibcast, Igather(v), Iscatter(v), Iallgather(v),
Ialltoall(v/w), Ireduce, Iallreduce, Iscan, Iexscan, Ireduce_scatter(_block)) and their
persistent twins: right results at every root, IN_PLACE, rank order for non-commutative
operations, several in flight at once, and progress while the rank does something else.
Any number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
ranks = np.arange(size)

# --- a barrier completes only when everyone has entered it -------------------------------------
request = world.Ibarrier()
if rank == 0:
    # Rank 0 has not heard from the last rank before that rank enters the barrier.
    assert world.recv(source=size - 1, tag=1) == "entered" if size > 1 else True
    request.Wait()
else:
    if rank == size - 1:
        world.send("entered", dest=0, tag=1)
    request.Wait()
assert request == MPI.REQUEST_NULL

# --- broadcast, gather, scatter, allgather at every root ----------------------------------------
for root in range(size):
    buf = np.arange(5, dtype="i") * (root + 1) if rank == root else np.zeros(5, dtype="i")
    world.Ibcast(buf, root=root).Wait()
    assert (buf == np.arange(5) * (root + 1)).all(), buf

    mine = np.full(2, rank, dtype="d")
    out = np.full(2 * size, -1.0) if rank == root else None
    world.Igather(mine, out, root=root).Wait()
    if rank == root:
        assert (out == np.repeat(ranks, 2)).all(), out

    src = np.repeat(ranks, 3).astype("l") if rank == root else None
    got = np.zeros(3, dtype="l")
    world.Iscatter(src, got, root=root).Wait()
    assert (got == rank).all(), got

everyone = np.zeros(size, dtype="i")
world.Iallgather(np.array([rank * 10], dtype="i"), everyone).Wait()
assert (everyone == ranks * 10).all(), everyone
inplace = np.where(ranks == rank, rank + 7, -1).astype("i")
world.Iallgather(MPI.IN_PLACE, inplace).Wait()
assert (inplace == ranks + 7).all(), inplace

# --- the v-variants: rank r contributes r + 1 elements ----------------------------------------
counts = [r + 1 for r in range(size)]
displs = [sum(counts[:r]) for r in range(size)]
mine = np.full(rank + 1, rank, dtype="i")
expect = np.repeat(ranks, counts).astype("i")
out = np.full(sum(counts), -1, dtype="i")
world.Iallgatherv(mine, [out, (counts, displs), MPI.INT]).Wait()
assert (out == expect).all(), out
out = np.full(sum(counts), -1, dtype="i") if rank == 0 else None
world.Igatherv(mine, [out, (counts, displs), MPI.INT] if rank == 0 else None, root=0).Wait()
if rank == 0:
    assert (out == expect).all(), out
got = np.zeros(rank + 1, dtype="i")
world.Iscatterv([expect, (counts, displs), MPI.INT] if rank == 0 else None, got, root=0).Wait()
assert (got == rank).all(), got

# --- all-to-all, v and w -------------------------------------------------------------------
send = (rank * 100 + ranks).astype("i")
recv = np.zeros(size, dtype="i")
world.Ialltoall(send, recv).Wait()
assert (recv == ranks * 100 + rank).all(), recv
send = np.repeat(rank * 100 + ranks, 2).astype("i")  # two to each
recv = np.zeros(2 * size, dtype="i")
sc, sd = [2] * size, [2 * r for r in range(size)]
world.Ialltoallv([send, (sc, sd), MPI.INT], [recv, (sc, sd), MPI.INT]).Wait()
assert (recv == np.repeat(ranks * 100 + rank, 2)).all(), recv
bytes_displs = [4 * r for r in range(size)]  # Alltoallw displacements are in bytes
send = (rank * 100 + ranks).astype("i")
recv = np.zeros(size, dtype="i")
types = [MPI.INT] * size
world.Ialltoallw([send, ([1] * size, bytes_displs), types],
                 [recv, ([1] * size, bytes_displs), types]).Wait()
assert (recv == ranks * 100 + rank).all(), recv

# --- reductions ------------------------------------------------------------------------------
value = np.array([rank + 1, 2 * rank], dtype="l")
total = np.zeros(2, dtype="l")
world.Iallreduce(value, total, op=MPI.SUM).Wait()
assert list(total) == [size * (size + 1) // 2, size * (size - 1)], total
for root in range(size):
    out = np.zeros(2, dtype="l")
    world.Ireduce(value, out if rank == root else None, op=MPI.MAX, root=root).Wait()
    if rank == root:
        assert list(out) == [size, 2 * (size - 1)], out
scan = np.zeros(1, dtype="i")
world.Iscan(np.array([rank + 1], dtype="i"), scan).Wait()
assert scan[0] == (rank + 1) * (rank + 2) // 2, scan
exscan = np.full(1, -5, dtype="i")
world.Iexscan(np.array([rank + 1], dtype="i"), exscan).Wait()
if rank > 0:
    assert exscan[0] == rank * (rank + 1) // 2, exscan
block = np.zeros(2, dtype="i")
world.Ireduce_scatter_block(np.tile(np.array([1, 2], dtype="i"), size), block).Wait()
assert list(block) == [size, 2 * size], block
part = np.zeros(rank + 1, dtype="i")
world.Ireduce_scatter(np.ones(sum(counts), dtype="i"), part, counts).Wait()
assert (part == size).all(), part
inplace = np.full(2, rank + 1, dtype="i")
world.Iallreduce(MPI.IN_PLACE, inplace, op=MPI.PROD).Wait()
assert (inplace == np.prod(ranks + 1)).all(), inplace


# A non-commutative (but associative) operation sees the ranks in order: concatenating
# decimal strings held as (value, 10 ** digits) pairs.
def concatenate(invec, inoutvec, datatype):
    a = np.frombuffer(invec, dtype="l").reshape(-1, 2)
    b = np.frombuffer(inoutvec, dtype="l").reshape(-1, 2)
    b[:, 0] = a[:, 0] * b[:, 1] + b[:, 0]
    b[:, 1] = a[:, 1] * b[:, 1]


concat = MPI.Op.Create(concatenate, commute=False)
result = np.zeros(2, dtype="l")
world.Iallreduce(np.array([rank + 1, 10], dtype="l"), result, op=concat).Wait()
assert result[0] == int("".join(str(r + 1) for r in range(size))), result
concat.Free()

# --- several in flight, completed in another order, with point-to-point in between --------------
a, b, c = np.zeros(1, "i"), np.zeros(1, "i"), np.zeros(size, "i")
r1 = world.Iallreduce(np.array([1], "i"), a)
r2 = world.Ibcast(b if rank else np.array([42], "i"), root=0)
r3 = world.Iallgather(np.array([rank], "i"), c)
right, left = (rank + 1) % size, (rank - 1) % size
assert world.sendrecv(rank, dest=right, source=left) == left  # progress happens meanwhile
MPI.Request.Waitall([r3, r1, r2])
assert a[0] == size and (rank == 0 or b[0] == 42) and (c == ranks).all(), (a, b, c)
barrier = world.Ibarrier()
while not barrier.Test():  # Test alone drives a collective to completion
    pass

# --- persistent collectives run again on each Start -----------------------------------------
data = np.zeros(1, "i")
total = np.zeros(1, "i")
request = world.Allreduce_init(data, total, op=MPI.SUM)
for step in range(3):
    data[0] = rank + step
    request.Start()
    request.Wait()
    assert total[0] == size * (size - 1) // 2 + size * step, total
assert request != MPI.REQUEST_NULL  # persistent: inactive, not null
request.Free()
barrier = world.Barrier_init()
MPI.Prequest.Startall([barrier])
barrier.Wait()
barrier.Free()

assert world.allreduce(1) == size
if rank == 0:
    print("nonblocking_collectives ok", flush=True)
