"""klyng-style messages and MPI messages in one program never mix, even with equal tags, and
the klyng ranks are the MPI ranks. Needs 2 or more ranks.
"""

import shoal
from shoal import MPI


def main():
    # Every rank asks for its rank first: under mpiexec the klyng layer sets itself up then.
    rank, size = shoal.rank(), shoal.size()
    world = MPI.COMM_WORLD
    assert (rank, size) == (world.Get_rank(), world.Get_size()), (rank, size)
    assert size >= 2, "klyng_with_mpi needs at least 2 ranks"

    if rank == 0:
        shoal.send("klyng, tag 5", 1, tag=5)
        world.send("mpi, tag 5", dest=1, tag=5)
        shoal.send("klyng, subject", 1, tag="subject")
        world.send("mpi, last", dest=1, tag=6)
    elif rank == 1:
        # MPI wildcards see only MPI messages ...
        status = MPI.Status()
        assert world.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status) == "mpi, tag 5"
        assert status.tag == 5
        assert world.recv(source=0, tag=MPI.ANY_TAG) == "mpi, last"
        assert not world.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG), "klyng traffic on world"
        # ... and klyng wildcards only klyng messages.
        assert shoal.recv() == "klyng, tag 5"
        assert shoal.recv(source=shoal.ANY_SOURCE, tag=shoal.ANY_TAG) == "klyng, subject"

    # Collectives on MPI in between klyng messages.
    total = world.allreduce(rank)
    assert total == size * (size - 1) // 2
    if rank != 0:
        shoal.send(("after allreduce", rank), 0, tag="late")
    else:
        got = sorted(shoal.recv(tag="late") for _ in range(size - 1))
        assert got == [("after allreduce", r) for r in range(1, size)], got
    world.Barrier()
    if rank == 0:
        print("klyng_with_mpi ok", flush=True)
    shoal.end()


shoal.init(main)
