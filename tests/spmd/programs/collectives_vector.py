"""Vector collectives: Scatterv, Gatherv, Allgatherv, Alltoallv with uneven counts, gaps
between the blocks, empty blocks, every root, IN_PLACE, and the buffer-spec forms
[arr, (counts, displs), TYPE], [arr, counts, displs, TYPE] and [arr, counts, TYPE].
Any number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()

# Rank r's block has r + 1 elements (or r elements: rank 0's block empty); blocks sit in the
# big buffer with a gap of 2 after each one, so displacements matter.
counts = [r + 1 for r in range(size)]
displs = [sum(counts[:r]) + 2 * r for r in range(size)]
total = displs[-1] + counts[-1]
zcounts = list(range(size))  # rank 0 contributes nothing
zdispls = [sum(zcounts[:r]) for r in range(size)]


def gathered(fill, cnts, dsps, length, value):
    """The big buffer after a gather: block r holds value(r), the gaps keep ``fill``."""
    out = [fill] * length
    for r in range(size):
        for j in range(cnts[r]):
            out[dsps[r] + j] = value(r, j)
    return out


for root in range(size):
    # --- Scatterv: block r of the root's buffer to rank r -------------------------------------
    source = np.arange(total, dtype=np.float64) + 1000 * root
    out = np.full(counts[rank], -1.0)
    world.Scatterv([source, (counts, displs), MPI.DOUBLE] if rank == root else None,
                   out, root=root)
    assert out.tolist() == source[displs[rank]:displs[rank] + counts[rank]].tolist(), (root, out)

    ints = np.arange(sum(zcounts), dtype=np.intc)
    out = np.full(zcounts[rank], -1, dtype=np.intc)
    world.Scatterv([ints, zcounts, zdispls, MPI.INT] if rank == root else None,
                   [out, MPI.INT], root=root)
    assert out.tolist() == list(range(zdispls[rank], zdispls[rank] + zcounts[rank])), out

    if rank == root:  # IN_PLACE: the root keeps its block where it is
        source = np.arange(total, dtype=np.float64)
        world.Scatterv([source, (counts, displs), MPI.DOUBLE], MPI.IN_PLACE, root=root)
        assert source.tolist() == list(range(total))
    else:
        out = np.zeros(counts[rank])
        world.Scatterv(None, out, root=root)
        assert out.tolist() == list(range(displs[rank], displs[rank] + counts[rank])), out

    # --- Gatherv: rank r's block lands at displs[r] of the root's buffer ------------------------
    mine = np.full(counts[rank], rank + 0.25)
    out = np.full(total, -1.0) if rank == root else None
    world.Gatherv(mine, [out, (counts, displs), MPI.DOUBLE] if rank == root else None, root=root)
    if rank == root:
        want = gathered(-1.0, counts, displs, total, lambda r, j: r + 0.25)
        assert out.tolist() == want, (root, out)

    mine = np.arange(zcounts[rank], dtype=np.int64) + 10 * rank
    out = np.full(sum(zcounts), -1, dtype=np.int64) if rank == root else None
    world.Gatherv([mine, MPI.INT64_T],
                  [out, zcounts, MPI.INT64_T] if rank == root else None, root=root)
    if rank == root:
        want = gathered(-1, zcounts, zdispls, sum(zcounts), lambda r, j: 10 * r + j)
        assert out.tolist() == want, out

    if rank == root:  # IN_PLACE: the root's own block is already in place
        out = np.full(total, -1.0)
        out[displs[rank]:displs[rank] + counts[rank]] = 42.0
        world.Gatherv(MPI.IN_PLACE, [out, counts, displs, MPI.DOUBLE], root=root)
        want = gathered(-1.0, counts, displs, total,
                        lambda r, j, root=root: 42.0 if r == root else float(r))
        assert out.tolist() == want, out
    else:
        world.Gatherv(np.full(counts[rank], float(rank)), None, root=root)

# --- Allgatherv (and IN_PLACE) -----------------------------------------------------------------
out = np.full(total, -1, dtype=np.intc)
world.Allgatherv(np.full(counts[rank], rank, dtype=np.intc), [out, (counts, displs), MPI.INT])
assert out.tolist() == gathered(-1, counts, displs, total, lambda r, j: r), out
out = np.full(total, -1.0, dtype=np.float32)
out[displs[rank]:displs[rank] + counts[rank]] = rank * 2
world.Allgatherv(MPI.IN_PLACE, [out, counts, displs, MPI.FLOAT])
assert out.tolist() == gathered(-1.0, counts, displs, total, lambda r, j: r * 2.0), out
raw = bytearray(sum(zcounts))
world.Allgatherv([bytearray([rank] * zcounts[rank]), MPI.BYTE], [raw, zcounts, MPI.BYTE])
assert list(raw) == [r for r in range(size) for _ in range(r)], list(raw)

# --- Alltoallv: rank i sends i + j + 1 elements to rank j ----------------------------------------
def count(i, j):
    return i + j + 1


scounts = [count(rank, j) for j in range(size)]
sdispls = [sum(scounts[:j]) + j for j in range(size)]  # one unused slot after each block
send = np.full(sdispls[-1] + scounts[-1], -1, dtype=np.int64)
for j in range(size):
    send[sdispls[j]:sdispls[j] + scounts[j]] = rank * 100 + j
rcounts = [count(i, rank) for i in range(size)]
rdispls = [sum(rcounts[:i]) for i in range(size)]
out = np.full(sum(rcounts), -1, dtype=np.int64)
world.Alltoallv([send, (scounts, sdispls), MPI.INT64_T], [out, (rcounts, rdispls), MPI.INT64_T])
assert out.tolist() == [i * 100 + rank for i in range(size) for _ in range(count(i, rank))], out

# Blocks of size zero in Alltoallv: rank i sends (i + j) % 2 elements to j.
scounts = [(rank + j) % 2 for j in range(size)]
sdispls = [sum(scounts[:j]) for j in range(size)]
send = np.array([rank * 10.0 + j for j in range(size) for _ in range(scounts[j])])
rcounts = [(i + rank) % 2 for i in range(size)]
rdispls = [sum(rcounts[:i]) for i in range(size)]
out = np.full(sum(rcounts), -1.0)
world.Alltoallv([send, scounts, sdispls, MPI.DOUBLE], [out, rcounts, rdispls, MPI.DOUBLE])
assert out.tolist() == [i * 10.0 + rank for i in range(size) if (i + rank) % 2], out

# IN_PLACE needs symmetric counts (what i sends j equals what j sends i): count(i, j) is.
rcounts = [count(i, rank) for i in range(size)]
rdispls = [sum(rcounts[:i]) for i in range(size)]
buf = np.array([rank * 100 + j for j in range(size) for _ in range(rcounts[j])], dtype=np.intc)
world.Alltoallv(MPI.IN_PLACE, [buf, (rcounts, rdispls), MPI.INT])
assert buf.tolist() == [i * 100 + rank for i in range(size) for _ in range(rcounts[i])], buf

assert world.allreduce(1) == size
if rank == 0:
    print("collectives_vector ok", flush=True)
