"""shoal only: a short Allreduce that the compiled rings leave part-way (a late partner)
goes on in Python's steps, and those reduce with the general reducer where the short
path has no plan (as without numpy), at every step it may be left at; the rings' own
path is used where built (``steps`` records where Python took over)."""

import time

import numpy as np

from shoal import MPI
from shoal.spmd import bufcoll

bufcoll._short_plan = lambda op, fmt: None  # what the short path has without numpy
steps = []
python_steps = bufcoll.BufferCollectives._short_steps


def recording(self, out, fmt, op, tag, mask, sent):
    steps.append((mask, sent))
    return python_steps(self, out, fmt, op, tag, mask, sent)


bufcoll.BufferCollectives._short_steps = recording
world = MPI.COMM_WORLD
rank, size = world.Get_rank(), world.Get_size()
for late in range(size):
    for dtype, op, want in ((np.float64, MPI.SUM, size * (size + 1) / 2),
                            (np.int32, MPI.MAX, size)):
        if rank == late:
            time.sleep(0.03)
        out = np.zeros(3, dtype=dtype)
        world.Allreduce(np.full(3, rank + 1, dtype=dtype), out, op=op)
        assert (out == want).all(), (late, dtype, out)
compiled = world.allreduce(bufcoll.world.engine().allreduce_fast is not None)
if compiled:  # every rank waited for a late one at least once, part-way through
    assert steps and all(sent for _, sent in steps), steps
world.Barrier()
if rank == 0:
    print("allreduce_steps_without_numpy ok")
