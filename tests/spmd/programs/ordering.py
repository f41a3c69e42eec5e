"""Message order: non-overtaking per (source, tag, communicator), many messages in flight,
nonblocking operations completing in any order. Needs 2 or more ranks.
"""

import random

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "ordering needs at least 2 ranks"
N = 300
TAGS = (0, 1, 2)


def payload(src, seq):
    # Mostly small messages with a few large ones among them: a large message must not be
    # overtaken by the small ones sent after it, whatever path each takes.
    if seq % 50 == 7:
        return (src, seq, b"L" * 200_000)
    return (src, seq, b"s" * (seq % 13))


# --- many senders, one receiver with both wildcards: per-source order is send order -------
if rank == 0:
    last = {}
    for _ in range(N * (size - 1)):
        status = MPI.Status()
        src, seq, body = world.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        assert src == status.source and status.tag == TAGS[seq % 3], (src, status.tag, seq)
        assert body == payload(src, seq)[2], f"message {seq} from {src} has the wrong body"
        assert seq == last.get(src, -1) + 1, (
            f"from rank {src}: message {seq} arrived after {last.get(src)} (overtaken)")
        last[src] = seq
    assert last == {s: N - 1 for s in range(1, size)}, last
else:
    for seq in range(N):
        world.send(payload(rank, seq), dest=0, tag=TAGS[seq % 3])
world.Barrier()

# --- per-tag order when the receiver picks tags in a different order than sent ----------------
# The sender posts everything nonblocking (the receiver does not take the messages in the
# order they were sent, so blocking sends could deadlock under a rendezvous protocol).
if rank == 0:
    for src in range(1, size):
        for tag in reversed(TAGS):
            expected = [s for s in range(N) if TAGS[s % 3] == tag]
            got = [world.recv(source=src, tag=tag)[1] for _ in expected]
            assert got == expected, f"tag {tag} from {src}: order {got[:10]}..."
else:
    reqs = [world.isend(payload(rank, seq), dest=0, tag=TAGS[seq % 3]) for seq in range(N)]
    MPI.Request.waitall(reqs)
world.Barrier()

# --- a flood of isends before the receiver receives anything -------------------------------
# All sends are posted, then everyone meets at a barrier, and only then does the receiver
# start: the sends must neither block nor be lost.
FLOOD = 1000
if rank == 1:
    bodies = [np.full(1 + (i * 37) % 3000, i, dtype=np.int64) for i in range(FLOOD)]
    obj_reqs = [world.isend(("obj", i), dest=0, tag=5) for i in range(FLOOD)]
    buf_reqs = [world.Isend(bodies[i], dest=0, tag=6) for i in range(FLOOD)]
    world.Barrier()
    MPI.Request.Waitall(buf_reqs)
    MPI.Request.waitall(obj_reqs)
elif rank == 0:
    world.Barrier()
    for i in range(FLOOD):
        assert world.recv(source=1, tag=5) == ("obj", i)
    buf = np.empty(3000, dtype=np.int64)
    for i in range(FLOOD):
        status = MPI.Status()
        world.Recv(buf, source=1, tag=6, status=status)
        n = status.Get_count(MPI.INT64_T)
        assert n == 1 + (i * 37) % 3000 and (buf[:n] == i).all(), (i, n, buf[:3])
else:
    world.Barrier()
world.Barrier()

# --- nonblocking receives complete in any order -------------------------------------------------
rng = random.Random(1234 + rank)
if rank == 1:
    reqs = [world.irecv(source=0, tag=t) for t in range(20)]
    world.send("posted", dest=0, tag=99)
    order = list(range(20))
    rng.shuffle(order)
    for t in order:  # wait in a random order; each one has its own message
        assert reqs[t].wait() == ("tag", t), t
elif rank == 0:
    assert world.recv(source=1, tag=99) == "posted"
    for t in reversed(range(20)):  # sent in the opposite order to the posting
        world.send(("tag", t), dest=1, tag=t)

# waitany and waitsome hand each completion out once, with the right index.
if rank == 1:
    reqs = [world.irecv(source=0, tag=40 + t) for t in range(10)]
    got = {}
    while len(got) < 5:
        index, obj = MPI.Request.waitany(reqs)
        assert 0 <= index < 10 and index not in got, index
        assert obj == 40 + index, (index, obj)
        assert reqs[index] == MPI.REQUEST_NULL
        got[index] = obj
    while len(got) < 10:
        indices, objs = MPI.Request.waitsome(reqs)
        assert indices and len(indices) == len(objs), (indices, objs)
        for index, obj in zip(indices, objs, strict=True):
            assert index not in got and obj == 40 + index, (index, obj)
            got[index] = obj
    assert sorted(got) == list(range(10))
    # With every request done: waitany gives UNDEFINED, waitsome gives (None, None).
    assert MPI.Request.waitany(reqs) == (MPI.UNDEFINED, None)
    assert MPI.Request.waitsome(reqs) == (None, None)
elif rank == 0:
    order = list(range(10))
    rng.shuffle(order)
    for t in order:
        world.send(40 + t, dest=1, tag=40 + t)

# Buffer receives too: Irecv into separate buffers, completed with Waitany in any order.
if rank == 1:
    bufs = [np.zeros(8, dtype=np.float64) for _ in range(6)]
    reqs = [world.Irecv(bufs[t], source=0, tag=60 + t) for t in range(6)]
    done = set()
    for _ in range(6):
        status = MPI.Status()
        index = MPI.Request.Waitany(reqs, status)
        assert status.tag == 60 + index and index not in done, (index, status.tag)
        assert (bufs[index] == index + 0.5).all(), bufs[index]
        done.add(index)
elif rank == 0:
    for t in (3, 1, 5, 0, 4, 2):
        world.Send(np.full(8, t + 0.5), dest=1, tag=60 + t)

assert world.allreduce(1) == size
if rank == 0:
    print("ordering ok", flush=True)
