"""Print, as JSON, whether the module named by $WATCH_MODULE was imported when this
program started and after it used MPI: what the fork server preloaded, and what shoal's
runtime imports by itself.  This file names numpy (so the server preloads it)."""

import json
import os
import sys

watched = os.environ["WATCH_MODULE"]
at_start = watched in sys.modules

from shoal import MPI

comm = MPI.COMM_WORLD
comm.sendrecv(comm.rank, dest=(comm.rank + 1) % comm.size, source=(comm.rank - 1) % comm.size)
comm.allreduce(comm.rank)
comm.Barrier()
print(json.dumps({"rank": comm.rank, "at_start": at_start,
                  "after_mpi": watched in sys.modules}))

import numpy  # noqa: F401
