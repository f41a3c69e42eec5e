"""Partitioned point-to-point (MPI-4): Psend_init/Precv_init around a ring, partitions
marked ready one by one, by range and by list, Parrived polled until every partition is
in, the request reused over several rounds with new data, an explicit count that is per
partition, and plain messages with the same tag that never mix with the partitioned ones
(PROC_NULL peers are tested in tests/spmd/test_objects.py: MPICH 5.0.2 crashes on them).
Needs 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "partitioned needs at least 2 ranks"
right, left = (rank + 1) % size, (rank - 1) % size
PARTS, EACH = 4, 3

out = np.zeros(PARTS * EACH, dtype="d")
into = np.full(PARTS * EACH, -1.0)
send = world.Psend_init(out, PARTS, right, tag=7)
recv = world.Precv_init(into, PARTS, left, tag=7)
plain = np.zeros(2, dtype="i")
for step in range(4):
    out[:] = rank * 1000 + step * 10 + np.arange(PARTS * EACH)
    world.Barrier()
    recv.Start()
    assert not any(recv.Parrived(i) for i in range(PARTS))
    world.Barrier()  # every receive is posted: a plain message with the same tag goes first
    plain_request = world.Isend(np.array([rank, step], dtype="i"), right, tag=7)
    send.Start()
    if step == 0:
        for i in range(PARTS):
            send.Pready(i)
    elif step == 1:
        send.Pready_range(0, PARTS // 2 - 1)
        send.Pready_range(PARTS // 2, PARTS - 1)
    else:
        send.Pready_list(list(range(PARTS))[::-1])
    for i in range(PARTS):
        while not recv.Parrived(i):
            pass
    status = MPI.Status()
    recv.Wait(status)
    send.Wait()
    assert (into == left * 1000 + step * 10 + np.arange(PARTS * EACH)).all(), into
    assert status.source == left and status.tag == 7, (status.source, status.tag)
    world.Recv(plain, left, tag=7)
    plain_request.Wait()
    assert list(plain) == [left, step], plain
    assert send != MPI.REQUEST_NULL and recv != MPI.REQUEST_NULL  # inactive, not freed
send.Free()
recv.Free()
assert send == MPI.REQUEST_NULL and recv == MPI.REQUEST_NULL

# --- an explicit count is per partition ---------------------------------------------------------
big = np.arange(10, dtype="i") + rank * 100
got = np.full(10, -1, dtype="i")
send = world.Psend_init([big, 2, MPI.INT], 3, right, tag=3)  # 3 partitions of 2: 6 ints
recv = world.Precv_init([got, 2, MPI.INT], 3, left, tag=3)
MPI.Prequest.Startall([recv, send])
send.Pready_range(0, 2)
MPI.Request.Waitall([send, recv])
assert list(got[:6]) == list(range(left * 100, left * 100 + 6)) and (got[6:] == -1).all(), got
send.Free()
recv.Free()
assert world.allreduce(1) == size
if rank == 0:
    print("partitioned ok", flush=True)
