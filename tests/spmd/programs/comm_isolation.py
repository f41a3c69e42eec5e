"""Traffic on different communicators never mixes: same source, same tag, different
communicator; collectives beside point-to-point; sibling communicators from Split.
Needs 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "comm_isolation needs at least 2 ranks"
dup = world.Dup()
other = world.Dup()

# --- same source and tag on dup and on world: each receive gets its own communicator's message --
if rank == 0:
    first = dup.isend("on dup", dest=1, tag=5)  # sent first ...
    world.send("on world", dest=1, tag=5)  # ... but received second
    first.wait()
    third = other.isend("on other", dest=1, tag=5)
    world.send("world again", dest=1, tag=5)
    third.wait()
elif rank == 1:
    status = MPI.Status()
    assert world.recv(source=0, tag=5, status=status) == "on world"
    assert world.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG) == "world again", (
        "a wildcard receive on world took another communicator's message")
    assert other.recv(source=0, tag=5) == "on other"
    assert dup.recv(source=0, tag=5) == "on dup"

# Buffers as well, with probes: a probe on one communicator never sees another's message.
if rank == 0:
    reqs = [dup.Isend(np.full(4, 1.0), dest=1, tag=6),
            other.Isend(np.full(4, 2.0), dest=1, tag=6)]
    world.Send(np.full(4, 3.0), dest=1, tag=6)
    MPI.Request.Waitall(reqs)
    world.send("marker", dest=1, tag=7)
elif rank == 1:
    status = MPI.Status()
    world.Probe(source=0, tag=MPI.ANY_TAG, status=status)
    assert status.tag == 6 and status.Get_count(MPI.DOUBLE) == 4
    out = np.empty(4)
    world.Recv(out, source=0, tag=6)
    assert (out == 3.0).all(), out
    assert world.recv(source=0, tag=7) == "marker"
    assert not world.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), (
        "world has no messages left, yet iprobe found one (from another communicator?)")
    other.Recv(out, source=0, tag=6)
    assert (out == 2.0).all(), out
    dup.Recv(out, source=0, tag=6)
    assert (out == 1.0).all(), out

# COMM_SELF and world messages to oneself, same tag.
to_world = world.isend(("world", rank), dest=rank, tag=9)
to_self = MPI.COMM_SELF.isend(("self", rank), dest=0, tag=9)
assert MPI.COMM_SELF.recv(source=0, tag=9) == ("self", rank)
assert world.recv(source=rank, tag=9) == ("world", rank)
MPI.Request.waitall([to_world, to_self])
world.Barrier()

# --- collectives do not disturb point-to-point traffic on the same communicator ----------------
# Every rank sends one message to every other rank first, then all run collectives, and only
# then receive with wildcards: they must get exactly those messages.
sends = [world.isend(("p2p", rank, dest), dest=dest, tag=11)
         for dest in range(size) if dest != rank]
assert world.bcast("b" if rank == size - 1 else None, root=size - 1) == "b"
assert world.allreduce(rank) == sum(range(size))
assert world.gather(rank, root=0) == (list(range(size)) if rank == 0 else None)
assert world.alltoall(list(range(size))) == [rank] * size
buf = np.arange(5.0) if rank == 0 else np.zeros(5)
world.Bcast(buf, root=0)
assert buf.tolist() == [0, 1, 2, 3, 4]
world.Barrier()
got = set()
for _ in range(size - 1):
    status = MPI.Status()
    msg = world.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
    assert msg == ("p2p", status.source, rank) and status.tag == 11, (msg, status.tag)
    got.add(status.source)
assert got == set(range(size)) - {rank}, got
MPI.Request.waitall(sends)
world.Barrier()
assert not world.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), "a collective left a message"

# --- collectives on different communicators, one after the other, different roots ----------------
a = dup.bcast("dup root" if rank == size - 1 else None, root=size - 1)
b = world.bcast("world root" if rank == 0 else None, root=0)
c = other.allreduce(rank + 1)
assert (a, b, c) == ("dup root", "world root", size * (size + 1) // 2), (a, b, c)
assert dup.allgather(rank) == list(range(size))
assert other.scan(rank) == sum(range(rank + 1))

# --- sibling communicators from Split: same local ranks and tags, different payloads --------------
half = world.Split(rank % 2, key=rank)
if half.Get_size() >= 2:
    if half.Get_rank() == 0:
        half.send(("half", rank % 2), dest=1, tag=13)
    elif half.Get_rank() == 1:
        assert half.recv(source=0, tag=13) == ("half", rank % 2)
got = half.bcast(("color", rank % 2) if half.Get_rank() == 0 else None, root=0)
assert got == ("color", rank % 2), got
assert half.allreduce(rank) == sum(r for r in range(size) if r % 2 == rank % 2)
# A message on world between ranks that are also partners in a half is still a world message.
if rank == 0 and size >= 3:
    request = half.isend("half 0->1", dest=1, tag=14)  # world rank 2
    world.send("world 0->2", dest=2, tag=14)
    request.wait()
elif rank == 2:
    assert world.recv(source=0, tag=14) == "world 0->2"
    assert half.recv(source=0, tag=14) == "half 0->1"

for comm in (half, dup, other):
    comm.Free()
assert world.allreduce(1) == size
if rank == 0:
    print("comm_isolation ok", flush=True)
