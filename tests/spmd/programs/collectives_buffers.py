"""Collectives on buffers: Bcast, Scatter, Gather, Allgather, Alltoall, Reduce, Allreduce,
Scan, Exscan, Reduce_scatter_block, Barrier; every root, several datatypes and ops,
IN_PLACE wherever MPI allows it, MAXLOC/MINLOC on DOUBLE_INT, user ops. Any number of ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
K = 3  # elements per rank in the rooted collectives

NUMERIC = [
    (np.float64, MPI.DOUBLE),
    (np.float32, MPI.FLOAT),
    (np.intc, MPI.INT),
    (np.int_, MPI.LONG),
    (np.int64, MPI.INT64_T),
]

world.Barrier()

for root in range(size):
    # --- Bcast, each datatype, each buffer-spec form -------------------------------------
    for i, (dtype, mpitype) in enumerate(NUMERIC):
        want = (np.arange(10) * (root + 1) + i).astype(dtype)
        buf = want.copy() if rank == root else np.zeros(10, dtype=dtype)
        world.Bcast(buf, root=root)
        assert np.array_equal(buf, want), (root, dtype, buf)
        buf = want.copy() if rank == root else np.zeros(10, dtype=dtype)
        world.Bcast([buf, mpitype], root=root)
        assert np.array_equal(buf, want), (root, dtype, buf)
        buf = want.copy() if rank == root else np.zeros(10, dtype=dtype)
        world.Bcast([buf, 4, mpitype], root=root)  # only the first 4 elements travel
        assert np.array_equal(buf[:4], want[:4]), (root, dtype, buf)
        assert rank == root or (buf[4:] == 0).all(), buf
    raw = bytearray(f"bytes from {root}".encode()) if rank == root else bytearray(12)
    world.Bcast([raw, 12, MPI.BYTE], root=root)
    assert raw[:12] == f"bytes from {root}".encode()[:12], raw

    # --- Scatter (and IN_PLACE at the root) ------------------------------------------------
    send = np.arange(size * K, dtype=np.float64) + 100 * root if rank == root else None
    out = np.zeros(K)
    world.Scatter(send, out, root=root)
    assert out.tolist() == [100 * root + rank * K + j for j in range(K)], (root, out)
    out = np.zeros(K, dtype=np.intc)
    send = np.arange(size * K, dtype=np.intc) if rank == root else None
    world.Scatter([send, MPI.INT] if rank == root else None, [out, MPI.INT], root=root)
    assert out.tolist() == [rank * K + j for j in range(K)], out
    if rank == root:
        send = np.arange(size * K, dtype=np.float64)
        world.Scatter(send, MPI.IN_PLACE, root=root)
        assert send.tolist() == list(range(size * K)), "IN_PLACE Scatter changed the root's data"
    else:
        out = np.zeros(K)
        world.Scatter(None, out, root=root)
        assert out.tolist() == [rank * K + j for j in range(K)], out

    # --- Gather (and IN_PLACE at the root) ---------------------------------------------------
    mine = np.full(K, rank * 10 + root, dtype=np.int64)
    out = np.zeros(size * K, dtype=np.int64) if rank == root else None
    world.Gather(mine, out, root=root)
    if rank == root:
        assert out.tolist() == [r * 10 + root for r in range(size) for _ in range(K)], out
    if rank == root:
        out = np.full(size * K, -1.0)
        out[rank * K:(rank + 1) * K] = 0.5
        world.Gather(MPI.IN_PLACE, [out, MPI.DOUBLE], root=root)
        want = [0.5 if r == root else float(r) for r in range(size) for _ in range(K)]
        assert out.tolist() == want, out
    else:
        world.Gather([np.full(K, float(rank)), MPI.DOUBLE], None, root=root)

    # --- Reduce (and IN_PLACE at the root) ---------------------------------------------------
    for dtype, mpitype in NUMERIC:
        mine = (np.arange(4) + rank).astype(dtype)
        out = np.zeros(4, dtype=dtype) if rank == root else None
        world.Reduce([mine, mpitype], [out, mpitype] if rank == root else None,
                     op=MPI.SUM, root=root)
        if rank == root:
            want = [sum(j + r for r in range(size)) for j in range(4)]
            assert out.tolist() == want, (dtype, out)
    mine = np.array([rank, -rank, rank % 2], dtype=np.int64)
    if rank == root:
        world.Reduce(MPI.IN_PLACE, mine, op=MPI.MAX, root=root)
        assert mine.tolist() == [size - 1, 0, 1 if size > 1 else 0], mine
    else:
        world.Reduce(mine, None, op=MPI.MAX, root=root)

# --- Allgather (and IN_PLACE) -----------------------------------------------------------------
out = np.zeros(size * 2, dtype=np.float32)
world.Allgather(np.array([rank, -rank], dtype=np.float32), out)
assert out.tolist() == [v for r in range(size) for v in (r, -r)], out
out = np.full(size * 2, -1, dtype=np.intc)
out[2 * rank:2 * rank + 2] = [rank, rank * rank]
world.Allgather(MPI.IN_PLACE, [out, MPI.INT])
assert out.tolist() == [v for r in range(size) for v in (r, r * r)], out
raw = bytearray(size)
world.Allgather([bytearray([65 + rank]), MPI.BYTE], [raw, MPI.BYTE])
assert raw == bytearray(range(65, 65 + size)), raw

# --- Alltoall (and IN_PLACE) -------------------------------------------------------------------
send = np.array([rank * 100 + dest for dest in range(size) for _ in range(2)], dtype=np.int64)
out = np.zeros(size * 2, dtype=np.int64)
world.Alltoall(send, out)
assert out.tolist() == [src * 100 + rank for src in range(size) for _ in range(2)], out
buf = np.array([rank * 100 + dest for dest in range(size)], dtype=np.float64)
world.Alltoall(MPI.IN_PLACE, [buf, MPI.DOUBLE])
assert buf.tolist() == [src * 100.0 + rank for src in range(size)], buf

# --- Allreduce: every op on the types it is defined for, and IN_PLACE ----------------------------
ints = np.array([rank + 1, rank % 2, 1 << rank, 6, 0], dtype=np.intc)
for op, want in [
    (MPI.SUM, [size * (size + 1) // 2, size // 2, (1 << size) - 1, 6 * size, 0]),
    (MPI.PROD, [int(np.prod(range(1, size + 1))), 0, 1 << (size * (size - 1) // 2),
                6 ** size, 0]),
    (MPI.MAX, [size, int(size > 1), 1 << (size - 1), 6, 0]),
    (MPI.MIN, [1, 0, 1, 6, 0]),
    (MPI.LAND, [1, 0, 1, 1, 0]),
    (MPI.LOR, [1, int(size > 1), 1, 1, 0]),
    (MPI.LXOR, [size % 2, (size // 2) % 2, size % 2, size % 2, 0]),
    (MPI.BAND, [np.bitwise_and.reduce(np.arange(1, size + 1)), 0, int(size == 1), 6, 0]),
    (MPI.BOR, [np.bitwise_or.reduce(np.arange(1, size + 1)), int(size > 1), (1 << size) - 1,
               6, 0]),
    (MPI.BXOR, [np.bitwise_xor.reduce(np.arange(1, size + 1)), (size // 2) % 2,
                (1 << size) - 1, 6 * (size % 2), 0]),
]:
    if size == 1:  # no op is applied to a single contribution (LAND(6) stays 6)
        want = ints.tolist()
    out = np.zeros(5, dtype=np.intc)
    world.Allreduce(ints, out, op=op)
    assert out.tolist() == [int(w) for w in want], (op, out.tolist(), want)
    for dtype, mpitype in ((np.int_, MPI.LONG), (np.int64, MPI.INT64_T)):
        out = np.zeros(5, dtype=dtype)
        world.Allreduce([ints.astype(dtype), mpitype], [out, mpitype], op=op)
        assert out.tolist() == [int(w) for w in want], (op, dtype, out.tolist(), want)
    inplace = ints.copy()
    world.Allreduce(MPI.IN_PLACE, inplace, op=op)
    assert inplace.tolist() == [int(w) for w in want], (op, inplace.tolist(), want)

for dtype, mpitype in ((np.float64, MPI.DOUBLE), (np.float32, MPI.FLOAT)):
    mine = np.array([rank + 0.5, -rank, 2.0], dtype=dtype)
    out = np.zeros(3, dtype=dtype)
    world.Allreduce([mine, mpitype], [out, mpitype], op=MPI.SUM)
    assert np.allclose(out, [size * size / 2, -size * (size - 1) / 2, 2.0 * size]), out
    world.Allreduce(mine, out, op=MPI.MIN)
    assert out.tolist() == [0.5, -(size - 1), 2.0], out
    world.Allreduce(mine, out, op=MPI.MAX)
    assert out.tolist() == [size - 0.5, 0, 2.0], out
    world.Allreduce(mine, out, op=MPI.PROD)
    assert np.allclose(out, [np.prod(np.arange(size) + 0.5), 0.0 if size > 1 else -0.0,
                             2.0 ** size]), out

# Bitwise ops on BYTE: bytearrays and uint8 arrays.
raw = bytearray([1 << (rank % 8), 0xF0 | rank % 16, 0xFF])
out = bytearray(3)
world.Allreduce([raw, MPI.BYTE], [out, MPI.BYTE], op=MPI.BOR)
want_or = 0
for r in range(size):
    want_or |= 1 << (r % 8)
assert out[0] == want_or and out[2] == 0xFF, list(out)
world.Allreduce([raw, MPI.BYTE], [out, MPI.BYTE], op=MPI.BAND)
assert out[1] & 0xF0 == 0xF0 and out[2] == 0xFF, list(out)
u8 = np.array([rank, 0xAA], dtype=np.uint8)
world.Allreduce(MPI.IN_PLACE, [u8, MPI.BYTE], op=MPI.BXOR)
assert u8.tolist() == [int(np.bitwise_xor.reduce(np.arange(size))), 0xAA * (size % 2)], u8

# MAXLOC / MINLOC on DOUBLE_INT: a (double, int) struct, as numpy's aligned record.
pair = np.dtype([("value", np.float64), ("index", np.intc)], align=True)
mine = np.zeros(3, dtype=pair)
mine["value"] = [rank, -rank, rank % 2]
mine["index"] = rank
out = np.zeros(3, dtype=pair)
world.Allreduce([mine, MPI.DOUBLE_INT], [out, MPI.DOUBLE_INT], op=MPI.MAXLOC)
assert out["value"].tolist() == [size - 1, 0, 1 if size > 1 else 0], out
assert out["index"].tolist() == [size - 1, 0, 1 if size > 1 else 0], "ties: smallest index"
world.Allreduce([mine, MPI.DOUBLE_INT], [out, MPI.DOUBLE_INT], op=MPI.MINLOC)
assert out["value"].tolist() == [0, -(size - 1), 0] and out["index"].tolist() == [0, size - 1, 0]
for root in range(size):
    out = np.zeros(3, dtype=pair)
    world.Reduce([mine, MPI.DOUBLE_INT], [out, MPI.DOUBLE_INT] if rank == root else None,
                 op=MPI.MINLOC, root=root)
    if rank == root:
        assert out["index"].tolist() == [0, size - 1, 0], out


# --- a user op on buffers: fn(inbuf, inoutbuf, datatype) updates inoutbuf ------------------------
def absmax(inbuf, inoutbuf, datatype):
    a = np.frombuffer(inbuf, dtype=np.float64)
    b = np.frombuffer(inoutbuf, dtype=np.float64)
    np.copyto(b, np.where(np.abs(a) > np.abs(b), a, b))


op = MPI.Op.Create(absmax, commute=True)
mine = np.array([(-1.0) ** rank * rank, 1.0])
out = np.zeros(2)
world.Allreduce(mine, out, op=op)
assert out.tolist() == [(-1.0) ** (size - 1) * (size - 1), 1.0], out
world.Allreduce(MPI.IN_PLACE, mine, op=op)
assert mine.tolist() == out.tolist(), mine
op.Free()

# --- Scan / Exscan (and IN_PLACE); Exscan leaves rank 0's buffer undefined ------------------------
mine = np.array([rank + 1, rank], dtype=np.int64)
out = np.zeros(2, dtype=np.int64)
world.Scan(mine, out, op=MPI.SUM)
assert out.tolist() == [sum(range(1, rank + 2)), sum(range(rank + 1))], out
world.Scan([mine, MPI.INT64_T], [out, MPI.INT64_T], op=MPI.MAX)
assert out.tolist() == [rank + 1, rank], out
inplace = mine.astype(np.float64)
world.Scan(MPI.IN_PLACE, inplace, op=MPI.PROD)
assert inplace.tolist() == [float(np.prod(range(1, rank + 2))), 0.0], inplace
out = np.full(2, -7, dtype=np.int64)
world.Exscan(mine, out, op=MPI.SUM)
if rank > 0:
    assert out.tolist() == [sum(range(1, rank + 1)), sum(range(rank))], out
inplace = mine.copy()
world.Exscan(MPI.IN_PLACE, inplace, op=MPI.SUM)
if rank > 0:
    assert inplace.tolist() == [sum(range(1, rank + 1)), sum(range(rank))], inplace

# --- Reduce_scatter_block (and IN_PLACE) ---------------------------------------------------------
mine = np.arange(size * 2, dtype=np.float64) + rank
out = np.zeros(2)
world.Reduce_scatter_block(mine, out, op=MPI.SUM)
base = size * (size - 1) / 2
assert out.tolist() == [2 * rank * size + base, (2 * rank + 1) * size + base], out
inplace = (np.arange(size * 2) + rank).astype(np.intc)
world.Reduce_scatter_block(MPI.IN_PLACE, [inplace, MPI.INT], op=MPI.MAX)
assert inplace[:2].tolist() == [2 * rank + size - 1, 2 * rank + size], inplace

world.Barrier()
assert world.allreduce(1) == size
if rank == 0:
    print("collectives_buffers ok", flush=True)
