"""The MPI environment: worlds, ranks, constants, clocks, Is_initialized/Finalize.

Runs on any number of ranks, one included.
"""

import socket
import time

from shoal import MPI

assert MPI.Is_initialized(), "MPI must be initialized as soon as it is imported"
assert not MPI.Is_finalized(), "MPI must not be finalized before Finalize"
try:
    MPI.Init()
except MPI.Exception:
    pass  # MPI may be initialized once only (MPICH says ERR_OTHER)
else:
    raise AssertionError("MPI.Init() a second time must raise MPI.Exception")
assert MPI.Is_initialized() and not MPI.Is_finalized()

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
assert isinstance(rank, int) and isinstance(size, int), (type(rank), type(size))
assert size >= 1 and 0 <= rank < size, (rank, size)
assert world.rank == rank and world.size == size, "rank/size properties disagree with Get_*"
assert isinstance(world, MPI.Intracomm) and isinstance(world, MPI.Comm), type(world)

# Every rank has its own rank: together they are exactly 0..size-1.
ranks = world.allgather(rank)
assert ranks == list(range(size)), f"allgather of the ranks gave {ranks}"
sizes = world.allgather(size)
assert sizes == [size] * size, f"ranks disagree on the size: {sizes}"

# COMM_SELF: a world of one.
self_comm = MPI.COMM_SELF
assert isinstance(self_comm, MPI.Intracomm), type(self_comm)
assert self_comm.Get_size() == 1 and self_comm.Get_rank() == 0
assert self_comm.size == 1 and self_comm.rank == 0
assert self_comm.bcast(("self", rank), root=0) == ("self", rank)
assert self_comm.allreduce(rank + 5) == rank + 5
assert self_comm.gather(rank, root=0) == [rank]

# Comparisons between the predefined communicators.
assert world.Compare(world) == MPI.IDENT
assert self_comm.Compare(self_comm) == MPI.IDENT
expected = MPI.CONGRUENT if size == 1 else MPI.UNEQUAL
assert world.Compare(self_comm) == expected, (world.Compare(self_comm), expected)
assert len({MPI.IDENT, MPI.CONGRUENT, MPI.SIMILAR, MPI.UNEQUAL}) == 4

# COMM_NULL is false, equal to itself and to nothing else; real communicators are true.
assert not MPI.COMM_NULL, "COMM_NULL must be false"
assert MPI.COMM_NULL == MPI.COMM_NULL
assert world != MPI.COMM_NULL
assert MPI.COMM_NULL != world  # noqa: SIM300 (both directions on purpose)
assert world and self_comm, "live communicators must be true"
assert world == MPI.COMM_WORLD and world != self_comm

# The special ranks and tags are distinct, negative, and never a real rank.
specials = {"ANY_SOURCE": MPI.ANY_SOURCE, "PROC_NULL": MPI.PROC_NULL}
assert MPI.ANY_SOURCE != MPI.PROC_NULL, specials
for name, value in specials.items():
    assert isinstance(value, int) and value < 0, (name, value)
assert isinstance(MPI.ANY_TAG, int) and MPI.ANY_TAG < 0, MPI.ANY_TAG
assert isinstance(MPI.UNDEFINED, int) and not 0 <= MPI.UNDEFINED < size, MPI.UNDEFINED
assert MPI.UNDEFINED not in (MPI.ANY_SOURCE, MPI.PROC_NULL), MPI.UNDEFINED
assert MPI.IN_PLACE is not None

# MPI.TAG_UB is an attribute key: the largest tag is the attribute's value (at least 32767).
tag_ub = world.Get_attr(MPI.TAG_UB)
assert isinstance(tag_ub, int) and tag_ub >= 32767, f"TAG_UB attribute is {tag_ub!r}"
assert self_comm.Get_attr(MPI.TAG_UB) == tag_ub
if size >= 2:
    # The largest tag works.
    if rank == 0:
        world.send("top tag", dest=1, tag=tag_ub)
    elif rank == 1:
        status = MPI.Status()
        got = world.recv(source=0, tag=tag_ub, status=status)
        assert got == "top tag" and status.Get_tag() == tag_ub, (got, status.Get_tag())

# Clocks: Wtime is seconds as a float and moves forward; Wtick is a small positive float.
tick = MPI.Wtick()
assert isinstance(tick, float) and 0 < tick < 1, tick
t0 = MPI.Wtime()
time.sleep(0.05)
t1 = MPI.Wtime()
assert isinstance(t0, float), type(t0)
assert 0.04 <= t1 - t0 < 10, f"slept 0.05 s but Wtime moved {t1 - t0} s"

# The processor name is this host's name; every rank here runs on the same host.
name = MPI.Get_processor_name()
assert isinstance(name, str) and name, repr(name)
names = world.allgather(name)
assert len(set(names)) == 1, f"ranks on one machine report different names: {names}"
assert name.split(".")[0] == socket.gethostname().split(".")[0], (name, socket.gethostname())

# Everyone got here; then Finalize.
assert world.allreduce(1) == size
world.Barrier()
if rank == 0:
    print("environment ok", flush=True)
MPI.Finalize()
assert MPI.Is_finalized(), "Is_finalized must be true after Finalize"
assert MPI.Is_initialized(), "Is_initialized stays true after Finalize (MPI says so)"
