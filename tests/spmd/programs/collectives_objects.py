"""Collectives on Python objects, at every root, with every predefined reduction op and
user ops. Runs on any number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()

# --- barrier -----------------------------------------------------------------------------
for _ in range(5):
    assert world.barrier() is None
    world.Barrier()

for root in range(size):
    # --- bcast: every rank gets the root's object; the argument elsewhere is ignored -------
    obj = {"root": root, "data": list(range(root + 3))} if rank == root else "ignored"
    got = world.bcast(obj, root=root)
    assert got == {"root": root, "data": list(range(root + 3))}, (root, got)
    assert world.bcast(None, root=root) is None

    # --- scatter: item i of the root's sequence goes to rank i --------------------------------
    items = [("item", root, i) for i in range(size)] if rank == root else None
    assert world.scatter(items, root=root) == ("item", root, rank)
    # Any sequence of the right length will do at the root (a tuple here).
    items = tuple(i * 10 for i in range(size)) if rank == root else None
    assert world.scatter(items, root=root) == rank * 10
    # As mpi4py reads it: None at the root scatters None to everyone; any iterable is listed.
    assert world.scatter(None, root=root) is None
    items = iter([i + 1 for i in range(size)]) if rank == root else None
    assert world.scatter(items, root=root) == rank + 1

    # --- gather: the root gets a list in rank order; the others get None -----------------------
    got = world.gather(("from", rank), root=root)
    if rank == root:
        assert got == [("from", r) for r in range(size)], got
    else:
        assert got is None, got

    # --- reduce: result at the root only, default op SUM ----------------------------------------
    got = world.reduce(rank + 1, root=root)
    assert got == (size * (size + 1) // 2 if rank == root else None), (root, got)
    got = world.reduce(float(rank), op=MPI.MAX, root=root)
    assert got == (float(size - 1) if rank == root else None), got

# --- allgather / alltoall -----------------------------------------------------------------------
assert world.allgather(rank * rank) == [r * r for r in range(size)]
assert world.allgather(None) == [None] * size
sent = [f"{rank}->{dest}" for dest in range(size)]
assert world.alltoall(sent) == [f"{src}->{rank}" for src in range(size)]
assert world.alltoall(None) == [None] * size
assert world.alltoall(iter(sent)) == [f"{src}->{rank}" for src in range(size)]

# --- allreduce with every predefined op -----------------------------------------------------------
values = list(range(1, size + 1))  # rank r contributes r + 1
v = rank + 1
assert world.allreduce(v) == sum(values), "default op is SUM"
assert world.allreduce(v, op=MPI.SUM) == sum(values)
assert world.allreduce(v, op=MPI.PROD) == int(np.prod(values))
assert world.allreduce(v, op=MPI.MAX) == size
assert world.allreduce(v, op=MPI.MIN) == 1
assert world.allreduce(2.5 * v, op=MPI.SUM) == 2.5 * sum(values)
# Logical ops give booleans (on one rank no op runs: the value comes back as it was).
assert world.allreduce(rank >= 0, op=MPI.LAND) is True
assert world.allreduce(rank > 0, op=MPI.LAND) is False
assert world.allreduce(rank == size - 1, op=MPI.LOR) is True
assert world.allreduce(rank == 0, op=MPI.LXOR) is True  # exactly one True
assert world.allreduce(True, op=MPI.LXOR) is (size % 2 == 1)
for op, value, want in ((MPI.LOR, 0, False), (MPI.LAND, v, True), (MPI.LXOR, 1, size % 2 == 1)):
    got = world.allreduce(value, op=op)
    assert bool(got) is want, (op, value, got)
    assert size == 1 or got is want, f"{got!r}: logical ops on ints give a bool"
# Bitwise ops on ints.
bits = 1 << rank
assert world.allreduce(bits, op=MPI.BOR) == (1 << size) - 1
assert world.allreduce(bits | 1, op=MPI.BAND) == 1
assert world.allreduce(0b1111 ^ bits, op=MPI.BAND) == 0b1111 & ~((1 << size) - 1)
want = 0
for r in range(size):
    want ^= r * 3 + 1
assert world.allreduce(rank * 3 + 1, op=MPI.BXOR) == want

# MAXLOC / MINLOC on (value, index) pairs: ties go to the smallest index.
assert world.allreduce((v, rank), op=MPI.MAXLOC) == (size, size - 1)
assert world.allreduce((v, rank), op=MPI.MINLOC) == (1, 0)
assert world.allreduce((rank // 2, rank), op=MPI.MAXLOC) == ((size - 1) // 2, 2 * ((size - 1) // 2))
assert world.allreduce((7, size - rank), op=MPI.MAXLOC) == (7, 1), "tie: smallest index"
assert world.allreduce((7, size - rank), op=MPI.MINLOC) == (7, 1), "tie: smallest index"
assert world.allreduce((-1.5 * (rank % 2), rank + 10), op=MPI.MINLOC) == (
    (-1.5, 11) if size > 1 else (-0.0, 10))
for root in range(size):
    got = world.reduce((float(-rank), rank), op=MPI.MINLOC, root=root)
    assert got == ((float(-(size - 1)), size - 1) if rank == root else None), got

# Non-numbers: SUM concatenates (order unspecified for a commutative op), MAX compares.
got = world.allreduce([rank], op=MPI.SUM)
assert sorted(got) == list(range(size)), got
assert world.allreduce(str(rank), op=MPI.MAX) == str(max(range(size), key=str))
got = world.allreduce(np.array([rank, 1.0]), op=MPI.SUM)
assert isinstance(got, np.ndarray) and got.tolist() == [sum(range(size)), float(size)], got


# --- user ops: Op.Create(fn, commute) with fn(a, b) combining a (lower ranks) with b --------------
def concat(a, b, datatype=None):
    return a + b


def keep_larger_abs(a, b, datatype=None):
    return a if abs(a) >= abs(b) else b


ordered = MPI.Op.Create(concat, commute=False)
assert not ordered.Is_commutative()
# A non-commutative op combines in rank order.
assert world.allreduce([rank], op=ordered) == list(range(size))
assert world.allreduce(str(rank), op=ordered) == "".join(str(r) for r in range(size))
for root in range(size):
    got = world.reduce((rank,), op=ordered, root=root)
    assert got == (tuple(range(size)) if rank == root else None), got
assert world.scan([rank], op=ordered) == list(range(rank + 1))
got = world.exscan([rank], op=ordered)
assert got == (None if rank == 0 else list(range(rank))), got
ordered.Free()
assert ordered == MPI.OP_NULL, "a freed Op becomes OP_NULL"

larger = MPI.Op.Create(keep_larger_abs, commute=True)
assert larger.Is_commutative()
assert world.allreduce((-1) ** rank * (rank + 1), op=larger) == (-1) ** (size - 1) * size
larger.Free()

# --- scan / exscan: inclusive and exclusive prefix reductions ------------------------------------
assert world.scan(v) == sum(values[: rank + 1])
assert world.scan(v, op=MPI.PROD) == int(np.prod(values[: rank + 1]))
assert world.scan(v, op=MPI.MAX) == v
assert world.scan((-v, rank), op=MPI.MINLOC) == (-v, rank)
got = world.exscan(v)
assert got == (None if rank == 0 else sum(values[:rank])), f"exscan at {rank}: {got}"
got = world.exscan(v, op=MPI.MAX)
assert got == (None if rank == 0 else rank), got

# --- collectives on COMM_SELF --------------------------------------------------------------------
self_comm = MPI.COMM_SELF
assert self_comm.allreduce(("only", rank), op=MPI.MAX) == ("only", rank)
assert self_comm.scatter([rank], root=0) == rank
assert self_comm.alltoall([rank]) == [rank]
assert self_comm.exscan(rank) is None

assert world.allreduce(1) == size
if rank == 0:
    print("collectives_objects ok", flush=True)
