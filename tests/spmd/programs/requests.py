"""Requests: wait/test/Get_status/cancel, the waitall/any/some and testall/any/some families,
REQUEST_NULL and empty statuses. Needs 2 or more ranks (ranks past 1 only take part in the
closing checks).
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "requests needs at least 2 ranks"


def go(tag):
    """Rank 1 tells rank 0 to go on (rank 0 sends nothing before it hears this)."""
    world.send("go", dest=0, tag=tag)


def wait_for_go(tag):
    assert world.recv(source=1, tag=tag) == "go"


if rank == 1:
    # --- nothing can have arrived yet: every test says "not done" -----------------------
    reqs = [world.irecv(source=0, tag=t) for t in range(3)]
    assert reqs[0].Get_status() is False, "Get_status of a pending receive"
    assert reqs[0].test() == (False, None)
    assert MPI.Request.testall(reqs) == (False, None), MPI.Request.testall(reqs)
    assert MPI.Request.testany(reqs) == (MPI.UNDEFINED, False, None)
    assert MPI.Request.testsome(reqs) == ([], []), MPI.Request.testsome(reqs)
    assert all(r != MPI.REQUEST_NULL for r in reqs), "a pending request is not REQUEST_NULL"
    go(100)
    # Get_status says "done" without completing: the request stays live and wait() still
    # returns the object.
    status = MPI.Status()
    while not reqs[0].Get_status(status):
        pass
    assert (status.source, status.tag) == (0, 0), (status.source, status.tag)
    assert reqs[0] != MPI.REQUEST_NULL, "Get_status must not free the request"
    assert reqs[0].wait() == "zero"
    assert reqs[0] == MPI.REQUEST_NULL
    # testall: eventually (True, [objects]); a request already done gives None in its slot.
    while True:
        flag, objs = MPI.Request.testall(reqs)
        if flag:
            break
        assert objs is None
    assert objs == [None, "one", "two"], objs

    # --- testany / testsome hand out each completion once ----------------------------------
    reqs = [world.irecv(source=0, tag=10 + t) for t in range(4)]
    go(101)
    got = {}
    while len(got) < 2:
        index, flag, obj = MPI.Request.testany(reqs)
        if flag:
            assert index not in got and obj == 10 + index, (index, obj)
            got[index] = obj
        else:
            assert index == MPI.UNDEFINED and obj is None, (index, obj)
    while len(got) < 4:
        indices, objs = MPI.Request.testsome(reqs)
        assert len(indices) == len(objs), (indices, objs)
        for index, obj in zip(indices, objs, strict=True):
            assert index not in got and obj == 10 + index, (index, obj)
            got[index] = obj
    assert sorted(got) == [0, 1, 2, 3]
    # Only REQUEST_NULLs left: test* say "done, nothing".
    assert MPI.Request.testany(reqs) == (MPI.UNDEFINED, True, None)
    assert MPI.Request.testsome(reqs) == (None, None)
    assert MPI.Request.testall(reqs) == (True, [None] * 4)
    assert MPI.Request.waitall(reqs) == [None] * 4

    # --- the REQUEST_NULL itself ------------------------------------------------------------
    assert not MPI.REQUEST_NULL, "REQUEST_NULL is false"
    assert MPI.REQUEST_NULL.Get_status() is True
    # Waiting on a null request gives an *empty* status: source ANY_SOURCE, tag ANY_TAG,
    # count 0, whatever the status held before.
    status = MPI.Status()
    fill = world.isend("fill", dest=1, tag=7)
    world.recv(source=1, tag=7, status=status)
    fill.wait()
    assert (status.source, status.tag) == (1, 7)
    done = reqs[0]
    assert done.wait(status) is None
    assert (status.source, status.tag) == (MPI.ANY_SOURCE, MPI.ANY_TAG), (
        f"empty status has source {status.source} tag {status.tag}")
    assert status.Get_count(MPI.BYTE) == 0
    assert MPI.Request.waitall([]) == []
    assert MPI.Request.testall([]) == (True, [])

    # --- cancel a receive that nothing will match -------------------------------------------
    request = world.irecv(source=0, tag=555)
    request.cancel()
    status = MPI.Status()
    assert request.wait(status) is None
    assert status.Is_cancelled(), "a cancelled receive's status must say so"
    request = world.Irecv(np.zeros(4), source=MPI.ANY_SOURCE, tag=556)
    request.Cancel()
    status = MPI.Status()
    request.Wait(status)
    assert status.Is_cancelled()
    # A receive that completed normally is not cancelled.
    fine = world.isend("fine", dest=1, tag=8)
    status = MPI.Status()
    assert world.irecv(source=1, tag=8).wait(status) == "fine"
    assert not status.Is_cancelled()
    fine.wait()

    # --- buffer-API families: Waitall/Testall/Waitany/Testany/Waitsome/Testsome ----------------
    bufs = [np.zeros(5, dtype=np.int32) for _ in range(6)]
    reqs = [world.Irecv(bufs[t], source=0, tag=20 + t) for t in range(6)]
    assert MPI.Request.Testall(reqs) is False
    assert MPI.Request.Testany(reqs) == (MPI.UNDEFINED, False)
    go(102)
    statuses = [MPI.Status() for _ in range(2)]
    MPI.Request.Waitall(reqs[:2], statuses)
    assert [s.tag for s in statuses] == [20, 21], [s.tag for s in statuses]
    index = MPI.Request.Waitany(reqs)
    assert 2 <= index < 6, f"Waitany must skip the null requests 0 and 1, got {index}"
    indices = MPI.Request.Waitsome(reqs)
    assert indices and all(3 <= i < 6 for i in indices), indices
    while not MPI.Request.Testall(reqs):
        pass
    assert MPI.Request.Waitsome(reqs) is None, "Waitsome on only null requests gives None"
    for t in range(6):
        assert (bufs[t] == t).all(), (t, bufs[t])

    # --- a request's test() after completion ------------------------------------------------------
    request = world.isend("again", dest=1, tag=9)
    assert world.recv(source=1, tag=9) == "again"
    request.wait()
    assert request.test() == (True, None)

elif rank == 0:
    wait_for_go(100)
    world.send("zero", dest=1, tag=0)
    world.send("one", dest=1, tag=1)
    world.send("two", dest=1, tag=2)
    wait_for_go(101)
    for t in (2, 0, 3, 1):
        world.send(10 + t, dest=1, tag=10 + t)
    wait_for_go(102)
    for t in range(6):
        world.Send(np.full(5, t, dtype=np.int32), dest=1, tag=20 + t)

# --- every rank: isend requests of mixed kinds waited on together --------------------------------
right, left = (rank + 1) % size, (rank - 1) % size
buf = np.zeros(3)
reqs = [
    world.isend(("mixed", rank), dest=right, tag=200),
    world.Isend(np.full(3, float(rank)), dest=right, tag=201),
    world.Irecv(buf, source=left, tag=201),
]
got = world.recv(source=left, tag=200)
MPI.Request.Waitall(reqs)
assert got == ("mixed", left) and (buf == left).all(), (got, buf)
assert all(isinstance(r, MPI.Request) for r in reqs), [type(r) for r in reqs]

# waitall fills one status per request.
reqs = [world.irecv(source=left, tag=210), world.irecv(source=left, tag=211)]
sends = [world.isend("a", dest=right, tag=211), world.isend("b", dest=right, tag=210)]
statuses = [MPI.Status(), MPI.Status()]
assert MPI.Request.waitall(reqs, statuses) == ["b", "a"]
assert [(s.source, s.tag) for s in statuses] == [(left, 210), (left, 211)]
MPI.Request.waitall(sends)

assert world.allreduce(1) == size
if rank == 0:
    print("requests ok", flush=True)
