"""Derived datatypes: every constructor's bounds, envelope and decoding, and data that
travels through them (vector, indexed, struct with holes, subarray, resized) in
point-to-point calls, persistent requests, collectives and Pack/Unpack; absolute
addresses with MPI.BOTTOM; Status.Get_count in elements of the type. Needs 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "derived_datatypes needs at least 2 ranks"
right, left = (rank + 1) % size, (rank - 1) % size

# --- bounds, envelopes, decoding --------------------------------------------------------------
vector = MPI.DOUBLE.Create_vector(3, 2, 4)  # 3 blocks of 2 doubles, 4 apart
assert (vector.size, vector.Get_extent(), vector.Get_true_extent()) == (48, (0, 80), (0, 80))
assert vector.Get_envelope() == (0, 0, 3, 1, MPI.COMBINER_VECTOR)
base, combiner, params = vector.decode()
assert base == MPI.DOUBLE and combiner == "VECTOR"
assert params == {"count": 3, "blocklength": 2, "stride": 4}, params
struct = MPI.Datatype.Create_struct([1, 1], [0, 8], [MPI.DOUBLE, MPI.CHAR])
assert struct.Get_extent() == (0, 16) and struct.size == 9  # padded like a C struct
assert struct.Get_true_extent() == (0, 9)
_, combiner, params = struct.decode()
assert combiner == "STRUCT" and params["datatypes"] == [MPI.DOUBLE, MPI.CHAR]
resized = MPI.INT.Create_resized(-4, 16)
assert resized.Get_extent() == (-4, 16) and resized.Get_true_extent() == (0, 4)
assert (resized.lb, resized.ub) == (-4, 12)
sub = MPI.INT.Create_subarray([4, 5], [2, 3], [1, 1])
assert sub.size == 24 and sub.extent == 80 and sub.Get_true_extent() == (24, 32)
assert sub.decode()[2] == {"sizes": [4, 5], "subsizes": [2, 3], "starts": [1, 1],
                           "order": MPI.ORDER_C}
for made in (vector, struct, resized, sub):
    assert not made.is_named and not made.is_predefined
    ints, addrs, counts, types = made.Get_contents()
    assert made.Get_envelope()[:4] == (len(ints), len(addrs), len(counts), len(types))

# --- point to point through a vector: every other pair of a row ---------------------------------
vector.Commit()
data = np.arange(12, dtype="d") + 100 * rank
recv = np.full(12, -1.0)
status = MPI.Status()
world.Sendrecv([data, 1, vector], dest=right, recvbuf=[recv, 1, vector], source=left,
               status=status)
picked = [0, 1, 4, 5, 8, 9]
assert list(recv[picked]) == list(np.arange(12)[picked] + 100 * left), recv
assert all(recv[i] == -1 for i in range(12) if i not in picked), recv  # holes untouched
assert status.Get_count(vector) == 1 and status.Get_count(MPI.DOUBLE) == 6
assert status.Get_elements(MPI.DOUBLE) == 6

# A derived send received as plain doubles, and back.
flat = np.zeros(6)
request = world.Irecv(flat, source=left)
world.Send([data, 1, vector], dest=right)
request.Wait()
assert list(flat) == list(np.arange(12)[picked] + 100 * left), flat

# --- a struct with a hole, as numpy lays out the same record -------------------------------------
record = np.dtype([("x", "f8"), ("c", "i1")], align=True)
assert record.itemsize == struct.extent
struct.Commit()
items = np.zeros(3, dtype=record)
items["x"], items["c"] = np.arange(3) + rank, rank
got = np.zeros(3, dtype=record)
world.Sendrecv([items, 3, struct], dest=right, recvbuf=[got, 3, struct], source=left)
assert list(got["x"]) == list(np.arange(3) + left) and (got["c"] == left).all(), got

# --- indexed blocks, persistent requests ----------------------------------------------------
indexed = MPI.INT.Create_indexed([2, 1, 3], [0, 4, 7]).Commit()
source = np.arange(10, dtype="i") + 10 * rank
target = np.full(10, -1, dtype="i")
send = world.Send_init([source, 1, indexed], dest=right, tag=5)
recvreq = world.Recv_init([target, 1, indexed], source=left, tag=5)
for _ in range(2):
    MPI.Prequest.Startall([send, recvreq])
    MPI.Request.Waitall([send, recvreq])
    chosen = [0, 1, 4, 7, 8, 9]
    assert list(target[chosen]) == [10 * left + i for i in chosen], target
    assert (target[[2, 3, 5, 6]] == -1).all(), target
send.Free()
recvreq.Free()

# --- collectives through derived types -------------------------------------------------------
column = MPI.INT.Create_vector(3, 1, 3).Commit()  # a column of a 3x3 row-major matrix
matrix = np.arange(9, dtype="i").reshape(3, 3) if rank == 0 else np.zeros((3, 3), dtype="i")
world.Bcast([matrix, 1, column], root=0)
assert list(matrix[:, 0]) == [0, 3, 6] and (rank == 0 or (matrix[:, 1:] == 0).all()), matrix
cols = np.zeros((3, size), dtype="i")
one_col = MPI.INT.Create_vector(3, 1, size).Create_resized(0, 4).Commit()
world.Gather(np.full(3, rank, dtype="i"), [cols, 1, one_col] if rank == 0 else None, root=0)
if rank == 0:
    assert (cols == np.arange(size)).all(), cols  # column r came from rank r
rows = np.zeros((3, size), dtype="i")
world.Allgather([np.arange(3, dtype="i") * 10 + rank, 3, MPI.INT], [rows, 1, one_col])
assert (rows == np.arange(3)[:, None] * 10 + np.arange(size)).all(), rows

# --- Pack and Unpack ---------------------------------------------------------------------------
packed = bytearray(vector.Pack_size(1, world) + MPI.INT.Pack_size(2, world))
position = vector.Pack(np.arange(12.0), packed, 0, world)
position = MPI.INT.Pack(np.array([7, 8], dtype="i"), packed, position, world)
assert position == len(packed) == 48 + 8
back, ints = np.zeros(12), np.zeros(2, dtype="i")
position = vector.Unpack(packed, 0, back, world)
MPI.INT.Unpack(packed, position, ints, world)
assert list(back[picked]) == picked and list(ints) == [7, 8], (back, ints)

# --- absolute addresses with MPI.BOTTOM -------------------------------------------------------
a = np.array([rank + 0.5])
b = np.array([rank, rank], dtype="i")
where = MPI.Datatype.Create_struct([1, 2], [MPI.Get_address(a), MPI.Get_address(b)],
                                   [MPI.DOUBLE, MPI.INT]).Commit()
out_a, out_b = np.zeros(1), np.zeros(2, dtype="i")
there = MPI.Datatype.Create_struct([1, 2], [MPI.Get_address(out_a), MPI.Get_address(out_b)],
                                   [MPI.DOUBLE, MPI.INT]).Commit()
world.Sendrecv([MPI.BOTTOM, 1, where], dest=right, recvbuf=[MPI.BOTTOM, 1, there],
               source=left)
assert out_a[0] == left + 0.5 and list(out_b) == [left, left], (out_a, out_b)

for datatype in (vector, struct, indexed, column, one_col, where, there, resized, sub):
    datatype.Free()
assert world.allreduce(1) == size
if rank == 0:
    print("derived_datatypes ok", flush=True)
