"""Intercommunicators in one process: null handles raise ERR_COMM as MPI's do, the
classes refuse each other's handles, bad arguments get MPI's errors, collectives MPI has
no inter form of say so, and dynamic processes (new ranks joining a running job) say
in their error why shoal has none.  Intercommunicators between ranks of a job run in
tests/spmd/programs/intercomms.py, under shoal and MPICH."""

from __future__ import annotations

import pytest

from shoal.spmd import constants as C
from shoal.spmd import mpi as MPI
from shoal.spmd.intercomm import Intercomm
from shoal.spmd.world import world_rank

pytestmark = pytest.mark.timeout(30)


def test_the_parent_of_a_rank_is_comm_null_typed_intercomm() -> None:
    parent = MPI.Comm.Get_parent()
    assert isinstance(parent, MPI.Intercomm)
    assert parent == MPI.COMM_NULL and parent is not MPI.COMM_NULL


def test_a_null_intercomm_raises_err_comm_as_mpi_does() -> None:
    null = MPI.Intercomm()
    for call in (null.Get_remote_group, null.Get_remote_size, null.Dup, null.Is_inter,
                 lambda: null.Merge(high=True), lambda: null.Split(0, 0),
                 lambda: null.Create(MPI.GROUP_EMPTY), null.Barrier):
        with pytest.raises(MPI.Exception) as caught:
            call()
        assert caught.value.Get_error_class() == C.ERR_COMM


def test_intra_and_inter_handles_are_not_each_other() -> None:
    with pytest.raises(TypeError):
        MPI.Intercomm(MPI.COMM_SELF)
    assert not isinstance(MPI.COMM_WORLD, MPI.Intercomm)
    inter = Intercomm._create((world_rank(),), (world_rank() + 1,), ctx=1 << 40)
    with pytest.raises(TypeError):
        MPI.Intracomm(inter)
    # a handle's integer gives back an Intercomm
    again = MPI.Comm.fromint(inter.toint())
    assert type(again) is MPI.Intercomm and again == inter


def test_an_intercommunicator_has_a_local_and_a_remote_group() -> None:
    me = world_rank()
    inter = Intercomm._create((me,), (me + 5, me + 7), ctx=1 << 41)
    assert (inter.Get_rank(), inter.Get_size(), inter.Get_remote_size()) == (0, 1, 2)
    assert inter.rank == 0 and inter.size == 1 and inter.remote_size == 2
    remote = inter.Get_remote_group()
    assert remote.Get_size() == 2 and remote.Get_rank() == MPI.UNDEFINED
    assert inter.Is_inter() and not inter.Is_intra()
    assert MPI.Comm.Compare(inter, MPI.COMM_SELF) == MPI.UNEQUAL
    mirror = Intercomm._create((me + 5,), (me,), ctx=1 << 47)  # (as another process has it)
    assert MPI.Comm.Compare(MPI.COMM_SELF, mirror) == MPI.UNEQUAL  # not "congruent"
    swapped = Intercomm._create((me,), (me + 7, me + 5), ctx=1 << 42)
    assert MPI.Comm.Compare(inter, swapped) == MPI.SIMILAR
    same = Intercomm._create((me,), (me + 5, me + 7), ctx=1 << 43)
    assert MPI.Comm.Compare(inter, same) == MPI.CONGRUENT
    assert MPI.Comm.Compare(inter, inter) == MPI.IDENT


@pytest.mark.parametrize("call", [
    lambda c: c.Scan(bytearray(4), bytearray(4)),
    lambda c: c.Exscan(bytearray(4), bytearray(4)),
    lambda c: c.Iscan(bytearray(4), bytearray(4)),
    lambda c: c.scan(1),
    lambda c: c.exscan(1),
    lambda c: c.Create_group(MPI.GROUP_EMPTY),
])
def test_what_mpi_defines_only_on_intracommunicators_says_so(call) -> None:
    inter = Intercomm._create((world_rank(),), (world_rank() + 1,), ctx=1 << 44)
    with pytest.raises(MPI.Exception, match="intercommunicator") as caught:
        call(inter)
    assert caught.value.Get_error_class() == C.ERR_COMM


def test_a_root_that_is_neither_root_proc_null_nor_a_remote_rank_is_err_root() -> None:
    inter = Intercomm._create((world_rank(),), (world_rank() + 1,), ctx=1 << 45)
    for root in (1, -7, 0.5):
        with pytest.raises(MPI.Exception, match=r"MPI\.ROOT, MPI\.PROC_NULL") as caught:
            inter.Bcast(bytearray(1), root=root)
        assert caught.value.Get_error_class() == C.ERR_ROOT
    # PROC_NULL takes no part: nothing is sent or waited for
    inter.Bcast(None, root=MPI.PROC_NULL)
    assert inter.bcast("ignored", root=MPI.PROC_NULL) is None


def test_groups_that_overlap_make_no_intercommunicator() -> None:
    with pytest.raises(MPI.Exception, match="overlap") as caught:
        MPI.COMM_SELF.Create_intercomm(0, MPI.COMM_SELF, 0, tag=3)
    assert caught.value.Get_error_class() == C.ERR_COMM
    group = MPI.COMM_SELF.Get_group()
    with pytest.raises(MPI.Exception, match="overlap"):
        MPI.Intercomm.Create_from_groups(group, 0, group, 0)
    with pytest.raises(MPI.Exception, match="remote group is empty"):
        MPI.Intercomm.Create_from_groups(group, 0, MPI.GROUP_EMPTY, 0)
    with pytest.raises(MPI.Exception) as caught:
        MPI.COMM_SELF.Create_intercomm(3, MPI.COMM_SELF, 0)
    assert caught.value.Get_error_class() == C.ERR_RANK


def test_commctx_inter_gives_a_private_duplicate_the_local_group_and_the_low_side() -> None:
    me = world_rank()
    inter = Intercomm._create((me,), (me + 1, me + 2), ctx=1 << 46)
    dup, tag, local, low = MPI._commctx_inter(inter)
    assert MPI.Comm.Compare(dup, inter) == MPI.CONGRUENT and dup.Is_inter()
    assert local.Get_size() == 1 and local.Is_intra()
    assert low  # the smaller group is the low one
    again = MPI._commctx_inter(inter)
    assert again[0] == dup and again[1] == tag + 1
    with pytest.raises(MPI.Exception):
        MPI._commctx_inter(MPI.COMM_SELF)


@pytest.mark.parametrize("call", [
    lambda: MPI.COMM_SELF.Spawn("python", ["x.py"], maxprocs=1),
    lambda: MPI.COMM_SELF.Spawn_multiple(["python"]),
    lambda: MPI.COMM_SELF.Accept("port"),
    lambda: MPI.COMM_SELF.Connect("port"),
    lambda: MPI.Comm.Join(0),
    MPI.Open_port,
    lambda: MPI.Lookup_name("service"),
])
def test_dynamic_processes_say_why_there_are_none(call) -> None:
    with pytest.raises(NotImplementedError, match="new ranks cannot join a running job"):
        call()
