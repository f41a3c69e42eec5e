"""Point-to-point with buffers: Send/Recv/Ssend/Isend/Irecv/Issend/Sendrecv/Sendrecv_replace,
Probe/Iprobe/Mprobe, every buffer-spec form and several datatypes. Needs 2 or more ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert size >= 2, "p2p_buffers needs at least 2 ranks"
right, left = (rank + 1) % size, (rank - 1) % size

# (dtype, MPI datatype) pairs; the MPI type must describe the numpy type exactly.
TYPES = [
    (np.float64, MPI.DOUBLE),
    (np.float32, MPI.FLOAT),
    (np.intc, MPI.INT),
    (np.int_, MPI.LONG),
    (np.int64, MPI.INT64_T),
    (np.uint8, MPI.BYTE),
]
assert MPI.DOUBLE.Get_size() == 8 and MPI.FLOAT.Get_size() == 4 and MPI.INT.Get_size() == 4
assert MPI.LONG.Get_size() == 8 and MPI.INT64_T.Get_size() == 8 and MPI.BYTE.Get_size() == 1


def sample(dtype, n, seed):
    return (np.arange(n) * 3 + seed).astype(dtype)


# --- Send/Recv: a bare array, [arr, TYPE], [arr, count, TYPE], with each datatype -------------
for i, (dtype, mpitype) in enumerate(TYPES):
    data = sample(dtype, 17, i)
    if rank == 0:
        world.Send(data, dest=1, tag=i)  # datatype taken from the array
        world.Send([data, mpitype], dest=1, tag=i)
        world.Send([data, 5, mpitype], dest=1, tag=i)  # only the first 5
        world.Ssend([data, mpitype], dest=1, tag=i)
    elif rank == 1:
        out = np.zeros(17, dtype=dtype)
        world.Recv(out, source=0, tag=i)
        assert np.array_equal(out, data), (dtype, out)
        out = np.zeros(17, dtype=dtype)
        status = MPI.Status()
        world.Recv([out, mpitype], source=0, tag=i, status=status)
        assert np.array_equal(out, data) and status.Get_count(mpitype) == 17
        assert status.Get_count(MPI.BYTE) == data.nbytes, status.Get_count(MPI.BYTE)
        assert status.Get_elements(mpitype) == 17
        assert (status.source, status.tag) == (0, i)
        # A receive buffer larger than the message: the rest is left alone.
        out = np.full(17, 99, dtype=dtype)
        world.Recv([out, 17, mpitype], source=0, tag=i, status=status)
        assert status.Get_count(mpitype) == 5, status.Get_count(mpitype)
        assert np.array_equal(out[:5], data[:5]) and (out[5:] == 99).all(), (dtype, out)
        out = np.zeros(17, dtype=dtype)
        world.Recv([out, mpitype], source=0, tag=i)
        assert np.array_equal(out, data), (dtype, out)

# --- displacements: [arr, (count, displ), TYPE] and [arr, count, displ, TYPE] --------------------
if rank == 0:
    data = np.arange(10.0)
    world.Send([data, (3, 2), MPI.DOUBLE], dest=1, tag=20)  # elements 2, 3, 4
    world.Send([data, 3, 6, MPI.DOUBLE], dest=1, tag=21)  # elements 6, 7, 8
    world.Send([data, 16, MPI.BYTE], dest=1, tag=22)  # the bytes of elements 0, 1
elif rank == 1:
    out = np.zeros(8)
    world.Recv([out, (3, 4), MPI.DOUBLE], source=0, tag=20)
    assert out.tolist() == [0, 0, 0, 0, 2, 3, 4, 0], out
    out = np.zeros(8)
    world.Recv([out, 3, 1, MPI.DOUBLE], source=0, tag=21)
    assert out.tolist() == [0, 6, 7, 8, 0, 0, 0, 0], out
    out = np.zeros(4)
    status = MPI.Status()
    world.Recv([out, 32, MPI.BYTE], source=0, tag=22, status=status)
    assert out.tolist() == [0, 1, 0, 0] and status.Get_count(MPI.BYTE) == 16, out

# --- bytes, bytearray and memoryview buffers -----------------------------------------------------
if rank == 0:
    world.Send(b"immutable bytes can be sent", dest=1, tag=30)
    world.Send(bytearray(b"a bytearray"), dest=1, tag=31)
    world.Send([memoryview(b"0123456789")[2:6], MPI.BYTE], dest=1, tag=32)
    world.Send([np.frombuffer(b"raw", dtype=np.uint8), 3, MPI.BYTE], dest=1, tag=33)
elif rank == 1:
    out = bytearray(64)
    status = MPI.Status()
    world.Recv(out, source=0, tag=30, status=status)
    n = status.Get_count(MPI.BYTE)
    assert bytes(out[:n]) == b"immutable bytes can be sent", out[:n]
    out = bytearray(11)
    world.Recv([out, MPI.BYTE], source=0, tag=31)
    assert out == bytearray(b"a bytearray"), out
    out = bytearray(4)
    world.Recv(out, source=0, tag=32)
    assert out == b"2345", out
    out = np.zeros(3, dtype=np.uint8)
    world.Recv([out, MPI.BYTE], source=0, tag=33)
    assert out.tobytes() == b"raw"

# --- zero-length messages ------------------------------------------------------------------------
if rank == 0:
    world.Send(np.zeros(0), dest=1, tag=34)
    world.Send([np.zeros(4), 0, MPI.DOUBLE], dest=1, tag=35)
elif rank == 1:
    status = MPI.Status()
    out = np.full(2, 5.0)
    world.Recv(out, source=0, tag=34, status=status)
    assert status.Get_count(MPI.DOUBLE) == 0 and (out == 5.0).all()
    world.Recv(out, source=0, tag=35, status=status)
    assert status.Get_count(MPI.DOUBLE) == 0 and status.tag == 35

# --- Isend/Irecv/Issend around the ring ----------------------------------------------------------
out = np.zeros(100, dtype=np.int64)
recv_req = world.Irecv(out, source=left, tag=40)
send_req = world.Isend(np.full(100, rank, dtype=np.int64), dest=right, tag=40)
status = MPI.Status()
recv_req.Wait(status)
send_req.Wait()
assert (out == left).all() and status.Get_source() == left and status.Get_count(MPI.LONG) == 100
assert recv_req == MPI.REQUEST_NULL

out32 = np.zeros(7, dtype=np.float32)
reqs = [world.Issend([np.full(7, rank, dtype=np.float32), MPI.FLOAT], dest=right, tag=41),
        world.Irecv([out32, MPI.FLOAT], source=left, tag=41)]
while not MPI.Request.Testall(reqs):
    pass
assert (out32 == left).all(), out32

# Issend cannot complete before the receiver posts its receive (rank 1 posts it only after it
# hears "go", which rank 0 sends after testing).
if rank == 0:
    request = world.Issend(np.arange(4.0), dest=1, tag=43)
    assert not request.Test(), "an Issend completed before any matching receive was posted"
    world.send("go", dest=1, tag=44)
    request.Wait()
elif rank == 1:
    assert world.recv(source=0, tag=44) == "go"
    out = np.zeros(4)
    world.Recv(out, source=0, tag=43)
    assert out.tolist() == [0, 1, 2, 3], out

# Test() on a buffer request.
out = np.zeros(3)
request = world.Irecv(out, source=left, tag=42)
world.Isend(np.full(3, 0.5 + rank), dest=right, tag=42).Wait()
while not request.Test():
    pass
assert (out == 0.5 + left).all()

# --- Sendrecv and Sendrecv_replace ---------------------------------------------------------------
out = np.zeros(5, dtype=np.intc)
status = MPI.Status()
world.Sendrecv(np.full(5, rank, dtype=np.intc), dest=right, sendtag=50,
               recvbuf=out, source=left, recvtag=50, status=status)
assert (out == left).all() and (status.source, status.tag) == (left, 50), (out, status.tag)
buf = np.zeros(4)
world.Sendrecv([np.arange(4.0) + rank, MPI.DOUBLE], right, 51, [buf, MPI.DOUBLE], left, 51)
assert (buf == np.arange(4.0) + left).all(), buf
data = np.arange(6.0) * (rank + 1)
world.Sendrecv_replace(data, dest=right, sendtag=52, source=left, recvtag=52, status=status)
assert (data == np.arange(6.0) * (left + 1)).all() and status.source == left, data
data = np.full(4, rank, dtype=np.int64)
world.Sendrecv_replace([data, MPI.INT64_T], dest=left, source=right)
assert (data == right).all(), data

# --- Probe / Iprobe / Mprobe / Improbe with buffers: size the receive from the status ------------
if rank == 0:
    world.Send(np.arange(37, dtype=np.int32), dest=1, tag=60)
    world.Send(np.arange(11.0), dest=1, tag=61)
    world.Send(np.arange(5.0), dest=1, tag=62)
    world.Send(np.arange(3.0), dest=1, tag=63)
elif rank == 1:
    status = MPI.Status()
    world.Probe(source=0, tag=60, status=status)
    n = status.Get_count(MPI.INT)
    assert n == 37, n
    out = np.empty(n, dtype=np.intc)
    world.Recv(out, source=status.Get_source(), tag=status.Get_tag())
    assert (out == np.arange(37)).all()
    while not world.Iprobe(source=MPI.ANY_SOURCE, tag=61, status=status):
        pass
    out = np.empty(status.Get_count(MPI.DOUBLE))
    world.Recv(out, source=0, tag=61)
    assert out.tolist() == list(range(11)), out
    message = world.Mprobe(source=0, tag=62, status=status)
    assert status.Get_count(MPI.DOUBLE) == 5
    out = np.empty(5)
    message.Recv(out, status=status)
    assert out.tolist() == [0, 1, 2, 3, 4] and status.tag == 62, out
    assert message == MPI.MESSAGE_NULL
    while (message := world.Improbe(source=0, tag=63)) is None:
        pass
    out = np.empty(3)
    message.Irecv(out).Wait()
    assert out.tolist() == [0, 1, 2], out

# --- buffers and objects between the same pair do not mix ----------------------------------------
if rank == 0:
    first = world.isend({"obj": 1}, dest=1, tag=70)
    world.Send(np.arange(3.0), dest=1, tag=71)
    world.send({"obj": 2}, dest=1, tag=70)
    first.wait()
elif rank == 1:
    out = np.empty(3)
    world.Recv(out, source=0, tag=71)
    assert out.tolist() == [0, 1, 2]
    assert world.recv(source=0, tag=70) == {"obj": 1}
    assert world.recv(source=0, tag=70) == {"obj": 2}

assert world.allreduce(1) == size
if rank == 0:
    print("p2p_buffers ok", flush=True)
