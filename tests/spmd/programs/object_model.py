"""mpi4py's object model: communicators, groups, datatypes, ops, infos and requests are
handles. Copies made with Cls(obj) are equal to the original but are other objects,
subclasses construct through super().__new__(cls, obj), free() leaves constants alone,
constants pickle to themselves and created objects only where mpi4py can, handles
round-trip through .handle/fromhandle. Any number of ranks.
"""

import pickle

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()


def raises(kind, call, *args):
    try:
        call(*args)
    except kind:
        return True
    return False


# --- copies are equal handles, other objects ------------------------------------------------
for klass, obj in [(MPI.Comm, world), (MPI.Intracomm, world), (MPI.Datatype, MPI.INT),
                   (MPI.Op, MPI.SUM), (MPI.Group, MPI.GROUP_EMPTY), (MPI.Info, MPI.INFO_ENV),
                   (MPI.Errhandler, MPI.ERRORS_RETURN)]:
    copy = klass(obj)
    assert copy == obj and copy is not obj, (klass, obj)
    assert not copy.__ne__(obj), (klass, obj)
    assert raises(TypeError, hash, obj), klass
    assert raises(TypeError, klass, 1234) and raises(TypeError, klass, "abc"), klass
assert MPI.Comm() == MPI.COMM_NULL and MPI.Intracomm() == MPI.COMM_NULL
assert not MPI.Comm() and not MPI.Datatype() and not MPI.Info() and not MPI.Group()
assert MPI.Comm(world).Get_size() == size and MPI.Comm(world).Get_rank() == rank
assert raises(TypeError, MPI.Comm, (1, 2, 3))
assert raises(TypeError, MPI.Datatype, MPI.SUM)

# A copy communicates like the original: it is the same communicator.
copy = MPI.Intracomm(world)
assert copy.allreduce(rank) == size * (size - 1) // 2
assert copy.Compare(world) == MPI.IDENT

# --- subclasses ------------------------------------------------------------------------------


class MyComm(MPI.Intracomm):
    def __new__(cls, comm=None):
        if comm is not None and comm != MPI.COMM_NULL:
            comm = comm.Dup()
        return super().__new__(cls, comm)


mine = MyComm(world)
assert type(mine) is MyComm and isinstance(mine, MPI.Comm) and mine != world
assert mine.Compare(world) == MPI.CONGRUENT
assert mine.bcast(rank, root=0) == 0
dup = mine.Dup()
assert type(dup) is MyComm, type(dup)
dup.Free()
assert dup == MPI.COMM_NULL
mine.Free()

# --- free() and Free() ---------------------------------------------------------------------
for constant in (world, MPI.COMM_SELF, MPI.INT, MPI.SUM, MPI.INFO_ENV, MPI.GROUP_EMPTY):
    constant.free()
    assert constant, constant  # lower-case free never touches a constant
    clone = type(constant)(constant)
    clone.free()
    assert not clone, clone  # ... but nulls a copy of one
assert raises(MPI.Exception, world.Free)
derived = MPI.DOUBLE.Create_contiguous(2)
derived.free()
assert derived == MPI.DATATYPE_NULL

# --- pickling --------------------------------------------------------------------------------
for constant in (MPI.COMM_NULL, world, MPI.COMM_SELF, MPI.INT, MPI.SUM, MPI.GROUP_NULL,
                 MPI.GROUP_EMPTY, MPI.INFO_NULL, MPI.INFO_ENV, MPI.REQUEST_NULL,
                 MPI.DATATYPE_NULL, MPI.ERRORS_RETURN):
    assert pickle.loads(pickle.dumps(constant)) is constant, constant
    copy = pickle.loads(pickle.dumps(type(constant)(constant)))
    assert copy == constant and copy is not constant, constant
dup = world.Dup()
assert raises(ValueError, pickle.dumps, dup)  # a created communicator does not pickle
assert raises(ValueError, pickle.dumps, world.Get_group())
dup.Free()
vector = pickle.loads(pickle.dumps(MPI.INT.Create_vector(2, 1, 3)))
assert vector.decode()[1:] == ("VECTOR", {"count": 2, "blocklength": 1, "stride": 3})
info = MPI.Info.Create({"a": "1"})
back = pickle.loads(pickle.dumps(info))
assert back != info and back.items() == [("a", "1")]
info.Free()

# --- handles ---------------------------------------------------------------------------------
for obj in (world, MPI.COMM_SELF, MPI.INT, MPI.SUM, MPI.INFO_ENV, MPI.GROUP_EMPTY,
            MPI.REQUEST_NULL, MPI.COMM_NULL):
    assert obj.handle >= 0
    back = type(obj).fromhandle(obj.handle)
    assert back == obj and type(back) is type(obj), (obj, back)
    assert raises(AttributeError, setattr, back, "handle", 0)

# --- groups are handles too --------------------------------------------------------------------
group = world.Get_group()
assert group.Dup() != group and group.Dup().Compare(group) == MPI.IDENT
assert group.Incl([]) == MPI.GROUP_EMPTY
group.Free()
assert group == MPI.GROUP_NULL

# --- Info --------------------------------------------------------------------------------------
info = MPI.Info.Create([("k1", "v1"), ("k2", "v2")])
assert len(info) == 2 and info.Get("k1") == "v1" and info.Get_nthkey(1) == "k2"
assert info.items() == [("k1", "v1"), ("k2", "v2")] and "k2" in info
assert info.pop("k1") == "v1" and info.popitem() == ("k2", "v2") and len(info) == 0
info.Free()
assert not MPI.INFO_NULL and len(MPI.INFO_NULL) == 0 and MPI.INFO_NULL.get("x") is None
assert raises(KeyError, MPI.INFO_NULL.__getitem__, "x")
dup = world.Dup(MPI.Info.Create({"mpi_assert_no_any_tag": "false"}))
assert isinstance(dup.Get_info(), MPI.Info)
dup.Free()

assert world.allreduce(1) == size
if rank == 0:
    print("object_model ok", flush=True)
