"""What MPI defines without dynamic processes: Get_parent is MPI_COMM_NULL typed Intercomm,
the Intercomm class has only null handles, and every call that would make an
intercommunicator says in its error why shoal has none."""

from __future__ import annotations

import pytest

from shoal.spmd import constants as C
from shoal.spmd import mpi as MPI

pytestmark = pytest.mark.timeout(30)


def test_the_parent_of_a_rank_is_comm_null_typed_intercomm() -> None:
    parent = MPI.Comm.Get_parent()
    assert isinstance(parent, MPI.Intercomm)
    assert parent == MPI.COMM_NULL and parent is not MPI.COMM_NULL


def test_a_null_intercomm_raises_err_comm_as_mpi_does() -> None:
    null = MPI.Intercomm()
    for call in (null.Get_remote_group, null.Get_remote_size, null.Dup, null.Is_inter,
                 lambda: null.Merge(high=True), lambda: null.Split(0, 0)):
        with pytest.raises(MPI.Exception) as caught:
            call()
        assert caught.value.Get_error_class() == C.ERR_COMM


def test_an_intracommunicator_is_not_an_intercomm() -> None:
    with pytest.raises(TypeError):
        MPI.Intercomm(MPI.COMM_SELF)
    assert not isinstance(MPI.COMM_WORLD, MPI.Intercomm)


@pytest.mark.parametrize("call", [
    lambda: MPI.COMM_SELF.Spawn("python", ["x.py"], maxprocs=1),
    lambda: MPI.COMM_SELF.Spawn_multiple(["python"]),
    lambda: MPI.COMM_SELF.Accept("port"),
    lambda: MPI.COMM_SELF.Connect("port"),
    lambda: MPI.COMM_SELF.Create_intercomm(0, MPI.COMM_SELF, 0),
    lambda: MPI.Comm.Join(0),
    MPI.Open_port,
    lambda: MPI.Lookup_name("service"),
])
def test_calls_that_make_intercommunicators_say_why_there_are_none(call) -> None:
    with pytest.raises(NotImplementedError, match="new ranks cannot join a running job"):
        call()
