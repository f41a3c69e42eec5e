"""MPI.pickle swapped for other serializers (json: no protocol argument), its PROTOCOL and
THRESHOLD, dumps_oob/loads_oob splitting large buffers out; user-defined operations called
with byte buffers and the Datatype of the elements, as mpi4py calls them, and at most 32 of
them at once. Any number of ranks.
"""

import json
import pickle

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
right, left = (rank + 1) % size, (rank - 1) % size

# --- MPI.pickle with json: objects travel as json ----------------------------------------------
MPI.pickle.__init__(lambda obj: json.dumps(obj).encode(),
                    lambda data: json.loads(bytes(data).decode()))
assert MPI.pickle.PROTOCOL is None
message = {"rank": rank, "items": [1, 2, 3]}
assert world.sendrecv(message, dest=right, source=left) == {"rank": left, "items": [1, 2, 3]}
assert world.bcast(["from", 0] if rank == 0 else None, root=0) == ["from", 0]
assert world.allgather(rank) == list(range(size))
# json turns tuples into lists: proof the json codec, not pickle, carried them.
assert world.sendrecv((1, 2), dest=right, source=left) == [1, 2]
MPI.pickle.__init__()  # back to the standard pickle
assert world.sendrecv((1, 2), dest=right, source=left) == (1, 2)
assert MPI.pickle.PROTOCOL == pickle.HIGHEST_PROTOCOL
MPI.pickle.PROTOCOL = 2
assert world.sendrecv({"p": 2}, dest=right, source=left) == {"p": 2}
MPI.pickle.PROTOCOL = None  # None restores the default
assert MPI.pickle.PROTOCOL == pickle.HIGHEST_PROTOCOL

# --- dumps/loads and the out-of-band split ----------------------------------------------------
codec = MPI.Pickle()
data = codec.dumps([1, "two"])
assert isinstance(data, bytes) and codec.loads(data) == [1, "two"]
small, large = np.arange(4.0), np.arange(100_000.0)
codec.THRESHOLD = 1024
stream, buffers = codec.dumps_oob({"small": small, "large": large})
assert len(buffers) == 1 and memoryview(buffers[0]).nbytes == large.nbytes, buffers
back = codec.loads_oob(stream, buffers)
assert (back["small"] == small).all() and (back["large"] == large).all()
codec.THRESHOLD = None  # None restores the default (256 KiB)
assert codec.THRESHOLD == 256 * 1024

# --- user-defined operations get byte buffers and the element datatype ------------------------
seen = []


def add_ints(invec, inoutvec, datatype):
    if datatype is None:  # the object form: op(x, y) calls function(x, y, None)
        return invec + inoutvec
    seen.append((len(invec), len(inoutvec), datatype == MPI.INT))
    a = np.frombuffer(invec, dtype="i")
    b = np.frombuffer(inoutvec, dtype="i")
    b += a


add = MPI.Op.Create(add_ints, commute=True)
total = np.zeros(3, dtype="i")
world.Allreduce(np.full(3, rank, dtype="i"), total, op=add)
assert (total == size * (size - 1) // 2).all(), total
assert all(entry == (12, 12, True) for entry in seen), seen  # 3 ints = 12 bytes, MPI.INT
assert size == 1 or world.allreduce(len(seen)) > 0  # some rank combined something
local = np.ones(3, dtype="i")
add.Reduce_local(np.full(3, 4, dtype="i"), local)
assert (local == 5).all(), local
assert add(3, 4) == 7  # the object form calls function(x, y, None), as mpi4py does
add.Free()

# At most 32 user operations at once, as in mpi4py.
ops = [MPI.Op.Create(add_ints) for _ in range(32)]
try:
    MPI.Op.Create(add_ints)
except RuntimeError:
    too_many = True
else:
    too_many = False
assert too_many, "a 33rd user operation was created"
for op in ops:
    op.Free()
MPI.Op.Create(add_ints).Free()  # freeing makes room again

assert world.allreduce(1) == size
if rank == 0:
    print("pickle_and_ops ok", flush=True)
