"""Bursts of medium-large messages (64-256 KiB: in the shared-memory ring whole, above the
small-frame size) between two ranks, received in ways that make a receiver look past the
message at the head of the stream: every one must arrive intact, in MPI's order.

1. a burst received in order into one buffer (a frame behind the one just received waits
   in the stream for the next receive);
2. three messages received in the reverse order of their tags;
3. after a receive, a probe must still see the next large message;
4. a large message, then a synchronous small one behind it, received small one first;
5. the object API and the buffer API mixed on the same stream.

Exactly 2 ranks take part; other ranks only join the final barrier.
"""

import numpy as np

from shoal import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
assert comm.Get_size() >= 2, "burst_of_large_messages needs 2 ranks"
KiB = 1 << 10


def pattern(nbytes, seed):
    return (np.arange(nbytes, dtype=np.int64) * 7 + seed).astype(np.uint8)


if rank == 0:
    for size in (64 * KiB, 256 * KiB):
        for i in range(24):
            comm.Send(pattern(size, i), dest=1, tag=1)
    # Received out of order: nonblocking sends (a blocking one may wait for its receive).
    arrays = [pattern(128 * KiB, tag) for tag in (10, 11, 12)]
    requests = [comm.Isend(a, dest=1, tag=tag) for a, tag in zip(arrays, (10, 11, 12), strict=True)]
    MPI.Request.Waitall(requests)
    comm.Send(pattern(96 * KiB, 20), dest=1, tag=20)
    comm.Send(pattern(96 * KiB, 21), dest=1, tag=21)
    large = pattern(200 * KiB, 30)
    request = comm.Isend(large, dest=1, tag=30)
    comm.Ssend(np.array([42], dtype=np.int64), dest=1, tag=31)  # acknowledged: it was taken
    request.Wait()
    for i in range(8):
        comm.Send(pattern(80 * KiB, 40 + i), dest=1, tag=40)
        comm.send({"i": i, "data": pattern(70 * KiB, 50 + i)}, dest=1, tag=41)
elif rank == 1:
    for size in (64 * KiB, 256 * KiB):
        got = np.empty(size, dtype=np.uint8)
        for i in range(24):
            comm.Recv(got, source=0, tag=1)
            assert np.array_equal(got, pattern(size, i)), (size, i)
    got = np.empty(128 * KiB, dtype=np.uint8)
    for tag in (12, 11, 10):
        status = MPI.Status()
        comm.Recv(got, source=0, tag=tag, status=status)
        assert status.Get_tag() == tag and status.Get_count(MPI.BYTE) == 128 * KiB
        assert np.array_equal(got, pattern(128 * KiB, tag)), tag
    got = np.empty(96 * KiB, dtype=np.uint8)
    comm.Recv(got, source=0, tag=20)
    assert np.array_equal(got, pattern(96 * KiB, 20))
    status = MPI.Status()
    while not comm.Iprobe(source=0, tag=21, status=status):
        pass
    assert status.Get_count(MPI.BYTE) == 96 * KiB
    comm.Recv(got, source=0, tag=21)
    assert np.array_equal(got, pattern(96 * KiB, 21))
    small = np.zeros(1, dtype=np.int64)
    comm.Recv(small, source=0, tag=31)  # behind a large one that no receive wants yet
    assert small[0] == 42
    big = np.empty(200 * KiB, dtype=np.uint8)
    comm.Recv(big, source=0, tag=30)
    assert np.array_equal(big, pattern(200 * KiB, 30))
    got = np.empty(80 * KiB, dtype=np.uint8)
    for i in range(8):
        comm.Recv(got, source=0, tag=40)
        assert np.array_equal(got, pattern(80 * KiB, 40 + i)), i
        obj = comm.recv(source=0, tag=41)
        assert obj["i"] == i and np.array_equal(obj["data"], pattern(70 * KiB, 50 + i)), i
comm.Barrier()
if rank == 0:
    print("burst_of_large_messages ok", flush=True)
