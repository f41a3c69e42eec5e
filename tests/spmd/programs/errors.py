"""Errors raise MPI.Exception with the right error class, and never hang: truncation, bad
ranks, bad tags, bad roots, the null communicator. After each error the communicator still
works. Any number of ranks (truncation needs 2).
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
# mpi4py 4 already returns errors as exceptions on COMM_WORLD; portable programs say so anyway.
world.Set_errhandler(MPI.ERRORS_RETURN)
assert world.Get_errhandler() == MPI.ERRORS_RETURN
assert issubclass(MPI.Exception, RuntimeError), MPI.Exception.__mro__
tag_ub = world.Get_attr(MPI.TAG_UB)

CLASSES = {"ERR_TRUNCATE": MPI.ERR_TRUNCATE, "ERR_RANK": MPI.ERR_RANK, "ERR_TAG": MPI.ERR_TAG,
           "ERR_ROOT": MPI.ERR_ROOT, "ERR_COMM": MPI.ERR_COMM, "ERR_OP": MPI.ERR_OP}
assert len(set(CLASSES.values())) == len(CLASSES) and MPI.SUCCESS not in CLASSES.values()


def expect(error_class, what, call, *args, **kwargs):
    """``call(*args, **kwargs)`` must raise MPI.Exception of ``error_class``."""
    try:
        call(*args, **kwargs)
    except MPI.Exception as error:
        got = error.Get_error_class()
        assert got == error_class, (
            f"{what}: error class {got}, want {error_class} ({error.Get_error_string()})")
        assert error.error_class == got
        code = error.Get_error_code()
        assert isinstance(code, int) and error.error_code == code, code
        assert isinstance(error.Get_error_string(), str) and error.Get_error_string()
        assert isinstance(error.error_string, str)
        assert str(error), "the exception's message is empty"
        return error
    raise AssertionError(f"{what}: no MPI.Exception raised")


# --- truncation: the message is longer than the receive buffer -----------------------------------
if size >= 2:
    if rank == 0:
        world.Send(np.arange(10.0), dest=1, tag=1)
        world.Send(np.arange(8, dtype=np.intc), dest=1, tag=2)
        world.Send(np.arange(6.0), dest=1, tag=4)
        world.Send(np.arange(3.0), dest=1, tag=3)
    elif rank == 1:
        small = np.zeros(5)
        expect(MPI.ERR_TRUNCATE, "Recv of 10 doubles into 5",
               world.Recv, small, source=0, tag=1)
        request = world.Irecv([np.zeros(4, dtype=np.intc), MPI.INT], source=0, tag=2)
        expect(MPI.ERR_TRUNCATE, "Irecv of 8 ints into 4, seen at Wait", request.Wait)
        message = world.Mprobe(source=0, tag=4)
        expect(MPI.ERR_TRUNCATE, "Mprobe then Message.Recv of 6 doubles into 2",
               message.Recv, np.zeros(2))
        # The truncated messages are gone; the next one arrives normally.
        out = np.zeros(3)
        world.Recv(out, source=0, tag=3)
        assert out.tolist() == [0, 1, 2], out
    world.Barrier()

# --- bad ranks -----------------------------------------------------------------------------------
data = np.zeros(2)
for bad in (size, size + 5, -5):
    expect(MPI.ERR_RANK, f"send to rank {bad}", world.send, "x", dest=bad)
    expect(MPI.ERR_RANK, f"Send to rank {bad}", world.Send, data, dest=bad)
    expect(MPI.ERR_RANK, f"isend to rank {bad}", world.isend, "x", dest=bad)
    expect(MPI.ERR_RANK, f"Isend to rank {bad}", world.Isend, data, dest=bad)
    expect(MPI.ERR_RANK, f"ssend to rank {bad}", world.ssend, "x", dest=bad)
    expect(MPI.ERR_RANK, f"recv from rank {bad}", world.recv, source=bad)
    expect(MPI.ERR_RANK, f"Recv from rank {bad}", world.Recv, data, source=bad)
    expect(MPI.ERR_RANK, f"irecv from rank {bad}", world.irecv, source=bad)
    expect(MPI.ERR_RANK, f"probe rank {bad}", world.probe, source=bad)
    expect(MPI.ERR_RANK, f"iprobe rank {bad}", world.iprobe, source=bad)
    expect(MPI.ERR_RANK, f"sendrecv to rank {bad}",
           world.sendrecv, "x", dest=bad, source=rank)
# ANY_SOURCE is for receiving only.
expect(MPI.ERR_RANK, "send to ANY_SOURCE", world.send, "x", dest=MPI.ANY_SOURCE)
expect(MPI.ERR_RANK, "COMM_SELF send to rank 1", MPI.COMM_SELF.send, "x", dest=1)

# --- bad tags ------------------------------------------------------------------------------------
for bad in (-5, tag_ub + 1):
    expect(MPI.ERR_TAG, f"send with tag {bad}", world.send, "x", dest=rank, tag=bad)
    expect(MPI.ERR_TAG, f"Send with tag {bad}", world.Send, data, dest=rank, tag=bad)
    expect(MPI.ERR_TAG, f"isend with tag {bad}", world.isend, "x", dest=rank, tag=bad)
    expect(MPI.ERR_TAG, f"recv with tag {bad}", world.recv, source=rank, tag=bad)
    expect(MPI.ERR_TAG, f"irecv with tag {bad}", world.irecv, source=rank, tag=bad)
# ANY_TAG is for receiving only.
expect(MPI.ERR_TAG, "send with ANY_TAG", world.send, "x", dest=rank, tag=MPI.ANY_TAG)

# --- bad roots: every rank raises, none hangs ----------------------------------------------------
for bad in (size, -3):
    expect(MPI.ERR_ROOT, f"bcast root {bad}", world.bcast, "x", root=bad)
    expect(MPI.ERR_ROOT, f"Bcast root {bad}", world.Bcast, data, root=bad)
    expect(MPI.ERR_ROOT, f"reduce root {bad}", world.reduce, 1, root=bad)
    expect(MPI.ERR_ROOT, f"gather root {bad}", world.gather, 1, root=bad)
    expect(MPI.ERR_ROOT, f"scatter root {bad}", world.scatter, [1] * size, root=bad)

# --- the null communicator ------------------------------------------------------------------------
expect(MPI.ERR_COMM, "COMM_NULL.Get_size", MPI.COMM_NULL.Get_size)
expect(MPI.ERR_COMM, "COMM_NULL.send", MPI.COMM_NULL.send, "x", dest=0)
expect(MPI.ERR_COMM, "COMM_NULL.Barrier", MPI.COMM_NULL.Barrier)
freed = world.Dup()
freed.Free()
expect(MPI.ERR_COMM, "a freed communicator", freed.allreduce, 1)

# Predefined handles cannot be freed.
expect(MPI.ERR_COMM, "COMM_WORLD.Free", MPI.COMM_WORLD.Free)
expect(MPI.ERR_COMM, "COMM_SELF.Free", MPI.COMM_SELF.Free)
expect(MPI.ERR_OP, "SUM.Free", MPI.SUM.Free)
assert MPI.COMM_WORLD.Get_size() == size and MPI.SUM != MPI.OP_NULL

# A wrong-length sequence for alltoall is refused on every rank before anything is sent.
try:
    world.alltoall(list(range(size + 1)))
except ValueError:
    pass
else:
    raise AssertionError("alltoall of size + 1 items must raise ValueError")

# --- errors on a duplicate are exceptions too (the error handler is inherited) -------------------
dup = world.Dup()
assert dup.Get_errhandler() == MPI.ERRORS_RETURN
expect(MPI.ERR_RANK, "send on a duplicate to a bad rank", dup.send, "x", dest=size)
dup.Free()

# Nothing above broke the world.
assert world.allreduce(1) == size
if size >= 2:
    got = world.sendrecv(rank, dest=(rank + 1) % size, source=(rank - 1) % size)
    assert got == (rank - 1) % size
world.Barrier()
if rank == 0:
    print("errors ok", flush=True)
