"""leave_early.py HOW: rank 1 leaves the job HOW while the other ranks wait in recv(source=1).

HOW: exit0 / exit3 (os._exit, no finalizing), kill (SIGKILL itself), segv (a crash in C),
keyboard (an uncaught KeyboardInterrupt). Every rank joins the job's communication first
(a barrier), so rank 1 leaves it without finalizing.
"""

import ctypes
import os
import signal
import sys

from shoal import MPI

comm = MPI.COMM_WORLD
comm.barrier()
print(f"rank {comm.rank} joined", flush=True)
if comm.rank == 1:
    how = sys.argv[1]
    if how == "exit0":
        os._exit(0)
    elif how == "exit3":
        os._exit(3)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segv":
        ctypes.string_at(0)
    elif how == "keyboard":
        raise KeyboardInterrupt
    raise SystemExit(f"unknown HOW {how!r}")
comm.recv(source=1)
print(f"rank {comm.rank} received: wrong, rank 1 sent nothing", flush=True)
