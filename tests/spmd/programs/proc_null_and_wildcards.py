"""PROC_NULL, ANY_SOURCE and ANY_TAG, and the statuses they leave.

PROC_NULL parts run on any number of ranks; wildcard parts need 2 or more.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()

# --- PROC_NULL: every operation completes at once and receives nothing ------------------
# A fresh Status: source ANY_SOURCE, tag ANY_TAG (as MPI and mpi4py set it up).
fresh = MPI.Status()
assert fresh.source == MPI.ANY_SOURCE and fresh.tag == MPI.ANY_TAG, (fresh.source, fresh.tag)


def assert_proc_null_status(status, what):
    assert status.Get_source() == MPI.PROC_NULL and status.source == MPI.PROC_NULL, (
        f"{what}: source {status.source}, want PROC_NULL")
    assert status.Get_tag() == MPI.ANY_TAG and status.tag == MPI.ANY_TAG, (
        f"{what}: tag {status.tag}, want ANY_TAG")
    assert status.Get_count(MPI.BYTE) == 0, f"{what}: count {status.Get_count(MPI.BYTE)}"
    assert status.Get_count(MPI.DOUBLE) == 0
    assert status.Get_elements(MPI.DOUBLE) == 0


world.send("into the void", dest=MPI.PROC_NULL, tag=1)
world.ssend("into the void", dest=MPI.PROC_NULL, tag=1)
status = MPI.Status()
assert world.recv(source=MPI.PROC_NULL, tag=1, status=status) is None
assert_proc_null_status(status, "recv from PROC_NULL")
assert world.recv(source=MPI.PROC_NULL) is None

request = world.isend("void", dest=MPI.PROC_NULL, tag=2)
assert request.wait() is None
request = world.issend("void", dest=MPI.PROC_NULL, tag=2)
assert request.test() == (True, None)
status = MPI.Status()
request = world.irecv(source=MPI.PROC_NULL, tag=2)
assert request.wait(status) is None
assert_proc_null_status(status, "irecv from PROC_NULL")

status = MPI.Status()
got = world.sendrecv("void", dest=MPI.PROC_NULL, source=MPI.PROC_NULL, status=status)
assert got is None, got
assert_proc_null_status(status, "sendrecv from PROC_NULL")

# Probes of PROC_NULL succeed at once.
status = MPI.Status()
assert world.iprobe(source=MPI.PROC_NULL, status=status) is True
assert_proc_null_status(status, "iprobe PROC_NULL")
assert world.probe(source=MPI.PROC_NULL, tag=3, status=status) is True
assert_proc_null_status(status, "probe PROC_NULL")

# Buffers: nothing is written to the receive buffer.
buf = np.full(4, 7.0)
world.Send(np.arange(4.0), dest=MPI.PROC_NULL, tag=4)
status = MPI.Status()
world.Recv(buf, source=MPI.PROC_NULL, tag=4, status=status)
assert (buf == 7.0).all(), f"Recv from PROC_NULL wrote into the buffer: {buf}"
assert_proc_null_status(status, "Recv from PROC_NULL")
request = world.Irecv(buf, source=MPI.PROC_NULL)
request.Wait(status)
assert (buf == 7.0).all()
assert_proc_null_status(status, "Irecv from PROC_NULL")
world.Isend(np.arange(4.0), dest=MPI.PROC_NULL).Wait()
world.Sendrecv(np.arange(4.0), dest=MPI.PROC_NULL, recvbuf=buf, source=MPI.PROC_NULL,
               status=status)
assert (buf == 7.0).all()
assert_proc_null_status(status, "Sendrecv from PROC_NULL")

# A shifted exchange without wrap-around: the ends talk to PROC_NULL.
up = rank + 1 if rank + 1 < size else MPI.PROC_NULL
down = rank - 1 if rank > 0 else MPI.PROC_NULL
got = world.sendrecv(rank, dest=up, sendtag=5, source=down, recvtag=5)
assert got == (None if rank == 0 else rank - 1), got
out = np.full(2, -1.0)
world.Sendrecv(np.full(2, float(rank)), dest=down, sendtag=6, recvbuf=out, source=up,
               recvtag=6)
want = -1.0 if rank == size - 1 else float(rank + 1)
assert (out == want).all(), (out, want)

if size >= 2:
    # --- ANY_SOURCE: rank 0 hears everyone; the status names who spoke ------------------
    if rank == 0:
        heard = {}
        for _ in range(size - 1):
            status = MPI.Status()
            got = world.recv(source=MPI.ANY_SOURCE, tag=10, status=status)
            assert got == f"from {status.source}", (got, status.source)
            assert status.tag == 10
            heard[status.source] = got
        assert sorted(heard) == list(range(1, size)), sorted(heard)
    else:
        world.send(f"from {rank}", dest=0, tag=10)

    # --- ANY_TAG: the status names the tag -------------------------------------------------
    if rank == 1:
        for tag in (17, 3, 12345):
            world.send(("tag", tag), dest=0, tag=tag)
    elif rank == 0:
        for tag in (17, 3, 12345):  # same source: they come in the order they were sent
            status = MPI.Status()
            got = world.recv(source=1, tag=MPI.ANY_TAG, status=status)
            assert got == ("tag", tag) and status.tag == tag, (got, status.tag)
            assert status.source == 1

    # --- both wildcards, buffers: status gives source, tag and the element count ----------
    if rank == 0:
        for _ in range(size - 1):
            buf = np.zeros(100, dtype=np.int32)
            status = MPI.Status()
            world.Recv(buf, source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
            src = status.Get_source()
            n = status.Get_count(MPI.INT)
            assert 1 <= src < size and status.Get_tag() == 100 + src, (src, status.Get_tag())
            assert n == src * 3, f"Get_count(INT) = {n}, rank {src} sent {src * 3}"
            assert status.Get_count(MPI.BYTE) == 4 * n and status.Get_elements(MPI.INT) == n
            assert (buf[:n] == src).all() and (buf[n:] == 0).all(), buf
    else:
        world.Send(np.full(rank * 3, rank, dtype=np.int32), dest=0, tag=100 + rank)
    # Keep the next part's messages away from rank 0's wildcard receives above.
    world.Barrier()

    # --- a wildcard receive does not take a message meant for a more specific one -----------
    # Rank 1 sends tag 21 then tag 22; rank 0 first asks for tag 22 precisely, then for any
    # tag, and must get 21.
    if rank == 1:
        world.send("t21", dest=0, tag=21)
        world.send("t22", dest=0, tag=22)
    elif rank == 0:
        assert world.recv(source=1, tag=22) == "t22"
        status = MPI.Status()
        assert world.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status) == "t21"
        assert (status.source, status.tag) == (1, 21)

    # --- posted wildcard receives match in the order they were posted ------------------------
    if rank == 0:
        reqs = [world.irecv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG) for _ in range(3)]
        world.send("ready", dest=1, tag=30)
        got = MPI.Request.waitall(reqs)
        assert got == ["w0", "w1", "w2"], f"wildcard receives matched out of order: {got}"
    elif rank == 1:
        assert world.recv(source=0, tag=30) == "ready"
        for i in range(3):
            world.send(f"w{i}", dest=0, tag=31 + i)

assert world.allreduce(1) == size
if rank == 0:
    print("proc_null_and_wildcards ok", flush=True)
