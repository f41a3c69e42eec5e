"""Point-to-point modes beyond the plain ones: persistent requests (Send_init, Recv_init,
Start, Startall, reused), buffered sends through an attached buffer (and the error when it
is too small or missing), Isendrecv and Isendrecv_replace, the Get_status_all/any/some
queries, active requests for PROC_NULL, and a Sendrecv whose receive is invalid leaving no
send behind. Needs 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "p2p_modes needs at least 2 ranks"
right, left = (rank + 1) % size, (rank - 1) % size


def error_class(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except MPI.Exception as exc:
        return exc.Get_error_class()
    return None


# --- persistent requests, started many times ------------------------------------------------
out = np.zeros(4, dtype="i")
into = np.zeros(4, dtype="i")
send = world.Send_init(out, dest=right, tag=1)
recv = world.Recv_init(into, source=left, tag=1)
assert send and recv and send != MPI.REQUEST_NULL
for step in range(5):
    out[:] = rank * 100 + step
    MPI.Prequest.Startall([recv, send])
    status = MPI.Status()
    MPI.Request.Waitall([send, recv], [MPI.Status(), status])
    assert (into == left * 100 + step).all(), into
    assert (status.source, status.tag, status.Get_count(MPI.INT)) == (left, 1, 4)
    assert send != MPI.REQUEST_NULL and recv != MPI.REQUEST_NULL  # inactive, not null
assert recv.Test()  # an inactive persistent request tests as complete
send.Free()
recv.Free()
assert send == MPI.REQUEST_NULL and recv == MPI.REQUEST_NULL

# --- buffered sends ----------------------------------------------------------------------------
assert error_class(world.Bsend, np.zeros(4), dest=right) == MPI.ERR_BUFFER  # none attached
memory = MPI.Alloc_mem(2 * (32 + MPI.BSEND_OVERHEAD))
MPI.Attach_buffer(memory)
payload = np.arange(4, dtype="d") + rank
world.Bsend(payload, dest=right, tag=2)
payload[:] = -1  # Bsend copied it: changing the array changes nothing in flight
request = world.Ibsend(np.full(4, rank, dtype="d"), dest=right, tag=3)
request.Wait()
# Both messages may still sit in the buffer (the peer has not received): a third one that
# does not fit is an error where MPI says so.
world.bsend({"object": rank}, dest=right, tag=4)  # the object API buffers too
got = np.zeros(4)
world.Recv(got, source=left, tag=2)
assert list(got) == list(np.arange(4) + left), got
world.Recv(got, source=left, tag=3)
assert (got == left).all(), got
assert world.recv(source=left, tag=4) == {"object": left}
detached = MPI.Detach_buffer()  # waits until the buffered messages have left
assert detached.address == memory.address and detached.nbytes == memory.nbytes
MPI.Free_mem(memory)
small = bytearray(16 + MPI.BSEND_OVERHEAD)
world.Attach_buffer(small)
assert error_class(world.Bsend, np.zeros(100), dest=right, tag=5) == MPI.ERR_BUFFER
world.Detach_buffer()
world.Barrier()

# --- Isendrecv, Isendrecv_replace ------------------------------------------------------------
into = np.zeros(3, dtype="i")
mine = np.full(3, rank, dtype="i")  # a send buffer must live until the request completes
request = world.Isendrecv(mine, dest=right, sendtag=6, recvbuf=into, source=left, recvtag=6)
request.Wait()
assert (into == left).all(), into
both = np.full(3, rank, dtype="i")
world.Isendrecv_replace(both, dest=right, sendtag=7, source=left, recvtag=7).Wait()
assert (both == left).all(), both

# --- Get_status_all / any / some leave the requests active ---------------------------------------
requests = [world.irecv(source=left, tag=t) for t in (10, 11)]
assert MPI.Request.Get_status_all(requests) is False
index, flag = MPI.Request.Get_status_any(requests)
assert (index, flag) == (MPI.UNDEFINED, False)
world.Barrier()  # nothing is sent before every rank has looked
world.send("ten", dest=right, tag=10)
world.send("eleven", dest=right, tag=11)
statuses = []
while not MPI.Request.Get_status_all(requests, statuses):
    pass
assert [(s.source, s.tag) for s in statuses] == [(left, 10), (left, 11)], statuses
assert all(requests) and MPI.Request.Get_status_some(requests) == [0, 1]
assert MPI.Request.Get_status_any(requests)[1]
assert MPI.Request.waitall(requests) == ["ten", "eleven"]

# --- PROC_NULL: active requests that complete at once ---------------------------------------------
# (a receive reports PROC_NULL as its source; a send the empty status, as MPICH does)
for request, source in ((world.isend("x", dest=MPI.PROC_NULL), MPI.ANY_SOURCE),
                        (world.irecv(source=MPI.PROC_NULL), MPI.PROC_NULL),
                        (world.Isend(np.zeros(1), dest=MPI.PROC_NULL), MPI.ANY_SOURCE),
                        (world.Irecv(np.zeros(1), source=MPI.PROC_NULL), MPI.PROC_NULL)):
    assert request and request != MPI.REQUEST_NULL
    status = MPI.Status()
    request.Wait(status)
    assert (status.source, status.tag, status.Get_count()) == (source, MPI.ANY_TAG, 0)
    assert request == MPI.REQUEST_NULL
world.Send(None, dest=MPI.PROC_NULL)
world.Recv(None, source=MPI.PROC_NULL)

# --- a Sendrecv with an invalid source sends nothing ---------------------------------------------
if rank == 0:
    assert error_class(world.Sendrecv, np.zeros(2), dest=1, sendtag=20, recvbuf=np.zeros(2),
                       source=size + 5, recvtag=20) == MPI.ERR_RANK
world.Barrier()
world.send("after", dest=right, tag=22)
assert world.recv(source=left, tag=22) == "after"  # anything sent before has arrived
if rank == 1:
    assert not world.Iprobe(source=0, tag=20)

assert world.allreduce(1) == size
if rank == 0:
    print("p2p_modes ok", flush=True)
