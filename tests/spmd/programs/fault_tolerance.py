"""MPI-4's fault-tolerance calls with no failed process: Agree is the bitwise AND of
every flag, Iagree completes only when every process joined (even when the others first
run a Barrier, which an agreement must never be confused with), Shrink and Ishrink give
the same processes, Get_failed is empty and Ack_failed acknowledges none. Any number of
ranks.
"""

import numpy as np

from shoal import MPI

world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
comm = world.Dup()

assert comm.Agree(0b1111 if rank else 0b1011) == 0b1011  # rank 0's bits are the AND
assert comm.Agree(0b0110) == 0b0110
flag = np.zeros(1, dtype="i")
for root in range(size):
    comm.Barrier()
    if rank == root:
        flag[0] = 0b1011
        request = comm.Iagree(flag)
        if size > 1:
            assert not request.Test()  # the others are still in the Barrier below
            assert flag[0] == 0b1011
        comm.Barrier()
    else:
        flag[0] = 0b1101
        comm.Barrier()
        request = comm.Iagree(flag)
    request.Wait()
    assert flag[0] == (0b1001 if size > 1 else 0b1011), flag

shrunk = comm.Shrink()
assert (shrunk.Get_size(), shrunk.Get_rank()) == (size, rank)
assert shrunk.allreduce(rank) == size * (size - 1) // 2
shrunk.Free()
again, request = comm.Ishrink()
request.Wait()
assert again.Get_size() == size and MPI.Comm.Compare(again, comm) == MPI.CONGRUENT
again.Free()
failed = comm.Get_failed()
assert MPI.Group.Compare(failed, MPI.GROUP_EMPTY) in (MPI.IDENT, MPI.CONGRUENT)
assert comm.Ack_failed() == 0 and not comm.Is_revoked()
comm.Free()

assert world.allreduce(1) == size
if rank == 0:
    print("fault_tolerance ok", flush=True)
