"""A program that fails on purpose: rank 1 fails an assert while the others wait in a
collective. The run must end quickly with a non-zero status, not hang. Needs 2 or more ranks.
"""

from shoal import MPI

world = MPI.COMM_WORLD
assert world.allreduce(1) == world.Get_size()
if world.Get_rank() == 1:
    assert 1 + 1 == 3, "deliberate failure on rank 1"
world.Barrier()  # the other ranks wait here for rank 1, which never comes
print("assert_fails should never get here", flush=True)
