"""Large messages (4 and 16 MiB): more than any ring or eager buffer holds. Point-to-point
both ways at once, objects and buffers, and the collectives that move them. 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "large_messages needs at least 2 ranks"
right, left = (rank + 1) % size, (rank - 1) % size
MiB = 1 << 20
N4 = 4 * MiB // 8  # float64 elements in 4 MiB
N16 = 16 * MiB // 8


def pattern(n, seed):
    """A pattern that shows misplaced, missing or repeated chunks."""
    return np.arange(n, dtype=np.float64) * 3.0 + seed


def check(arr, n, seed, what):
    want = pattern(n, seed)
    if not np.array_equal(arr, want):
        bad = np.flatnonzero(arr != want)
        raise AssertionError(f"{what}: {bad.size} of {n} elements wrong, first at {bad[0]}: "
                             f"{arr[bad[0]]} instead of {want[bad[0]]}")


# --- 16 MiB Send/Recv one way, then Ssend back -------------------------------------------------
if rank == 0:
    world.Send(pattern(N16, 1), dest=1, tag=1)
    out = np.empty(N16)
    world.Recv(out, source=1, tag=2)
    check(out, N16, 2, "16 MiB Ssend 1 -> 0")
elif rank == 1:
    out = np.empty(N16)
    status = MPI.Status()
    world.Recv(out, source=0, tag=1, status=status)
    assert status.Get_count(MPI.DOUBLE) == N16 and status.Get_count(MPI.BYTE) == 16 * MiB
    check(out, N16, 1, "16 MiB Send 0 -> 1")
    world.Ssend(pattern(N16, 2), dest=0, tag=2)

# --- an odd size into a larger buffer (a blocking send's message is copied in two halves) ---
if rank == 0:
    world.Send(pattern(N4 + 4097, 3), dest=1, tag=6)
elif rank == 1:
    out = np.zeros(N4 + 5000)
    status = MPI.Status()
    world.Recv(out, source=0, tag=6, status=status)
    assert status.Get_count(MPI.DOUBLE) == N4 + 4097
    check(out[:N4 + 4097], N4 + 4097, 3, "odd-sized Send 0 -> 1")
    assert not out[N4 + 4097:].any(), "bytes written past the message"

# --- every rank exchanges 16 MiB with both neighbours at once: Sendrecv must not deadlock -----
out = np.empty(N16)
world.Sendrecv(pattern(N16, rank), dest=right, sendtag=3, recvbuf=out, source=left, recvtag=3)
check(out, N16, left, "16 MiB Sendrecv around the ring")
if rank < 2:  # the pair 0 <-> 1 sends to each other simultaneously
    peer = 1 - rank
    out = np.empty(N4)
    world.Sendrecv(pattern(N4, 10 + rank), dest=peer, sendtag=4,
                   recvbuf=out, source=peer, recvtag=4)
    check(out, N4, 10 + peer, "4 MiB Sendrecv between 0 and 1")
data = pattern(N4, 20 + rank)
world.Sendrecv_replace(data, dest=right, sendtag=5, source=left, recvtag=5)
check(data, N4, 20 + left, "4 MiB Sendrecv_replace")

# --- nonblocking: several large messages in flight in both directions ---------------------------
outs = [np.empty(N4) for _ in range(3)]
reqs = [world.Irecv(outs[k], source=left, tag=10 + k) for k in range(3)]
reqs += [world.Isend(pattern(N4, 100 * rank + k), dest=right, tag=10 + k) for k in range(3)]
MPI.Request.Waitall(reqs)
for k in range(3):
    check(outs[k], N4, 100 * left + k, f"Isend/Irecv large #{k}")
# Isends posted before the matching receives exist.
sends = [world.Isend(pattern(N4, 200 * rank + k), dest=left, tag=20 + k) for k in range(2)]
world.Barrier()
for k in reversed(range(2)):  # received in the opposite order
    out = np.empty(N4)
    world.Recv(out, source=right, tag=20 + k)
    check(out, N4, 200 * right + k, f"late-received Isend #{k}")
MPI.Request.Waitall(sends)

# --- large Python objects (pickled, numpy arrays inside) ------------------------------------------
big = {"rank": rank, "array": pattern(N4, rank), "blob": bytes([rank % 256]) * (8 * MiB)}
request = world.isend(big, dest=right, tag=30)
got = world.recv(source=left, tag=30)
request.wait()
assert got["rank"] == left and got["blob"] == bytes([left % 256]) * (8 * MiB)
check(got["array"], N4, left, "array inside a large object")
if rank == 0:
    world.ssend(list(range(500_000)), dest=1, tag=31)
elif rank == 1:
    assert world.recv(source=0, tag=31) == list(range(500_000))
got = world.sendrecv(b"x" * (5 * MiB + rank), dest=right, sendtag=32, source=left, recvtag=32)
assert got == b"x" * (5 * MiB + left), len(got)

# --- numpy arrays of odd sizes through the object API: each its own out-of-band buffer ---------
odd = [np.arange(MiB + k, dtype=np.uint8) for k in (1, 3, 7)]
request = world.isend({"odd": odd, "half": pattern(N4, rank).astype(np.float32)}, dest=right,
                      tag=33)
got = world.recv(source=left, tag=33)
request.wait()
for k, arr in zip((1, 3, 7), got["odd"], strict=True):
    assert arr.dtype == np.uint8 and np.array_equal(arr, np.arange(MiB + k, dtype=np.uint8)), k
assert np.array_equal(got["half"], pattern(N4, left).astype(np.float32))
assert got["half"].flags.writeable  # a received array is the receiver's own, to change
got["half"][:] = 0

# --- collectives with large buffers ---------------------------------------------------------------
for root in (0, size - 1):
    buf = pattern(N16, root) if rank == root else np.zeros(N16)
    world.Bcast(buf, root=root)
    check(buf, N16, root, f"16 MiB Bcast from {root}")
    got = world.bcast(("big", pattern(N4, root)) if rank == root else None, root=root)
    check(got[1], N4, root, f"4 MiB object bcast from {root}")

mine = np.full(N4, float(rank + 1))
out = np.empty(N4)
world.Allreduce(mine, out, op=MPI.SUM)
assert (out == size * (size + 1) / 2).all(), "4 MiB Allreduce"
world.Allreduce(MPI.IN_PLACE, mine, op=MPI.MAX)
assert (mine == size).all()

chunk = N4 // size
gathered = np.empty(chunk * size) if rank == 1 % size else None
world.Gather(pattern(chunk, rank), gathered, root=1 % size)
if rank == 1 % size:
    for r in range(size):
        check(gathered[r * chunk:(r + 1) * chunk], chunk, r, f"Gather block {r}")
out = np.empty(chunk * size)
world.Allgather(pattern(chunk, rank), out)
for r in range(size):
    check(out[r * chunk:(r + 1) * chunk], chunk, r, f"Allgather block {r}")
send = np.concatenate([pattern(chunk, 1000 * rank + d) for d in range(size)])
out = np.empty(chunk * size)
world.Alltoall(send, out)
for r in range(size):
    check(out[r * chunk:(r + 1) * chunk], chunk, 1000 * r + rank, f"Alltoall block {r}")

assert world.allreduce(1) == size
if rank == 0:
    print("large_messages ok", flush=True)
