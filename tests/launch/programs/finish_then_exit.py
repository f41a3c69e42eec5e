"""finish_then_exit.py CODE: rank 1 finishes its part (communicates, then leaves normally
through sys.exit(CODE), so MPI is finalized at exit); rank 0 carries on working after
rank 1 is gone and then prints that it finished."""

import os
import sys
import time

from shoal import MPI

comm = MPI.COMM_WORLD
if comm.rank == 1:
    comm.send(os.getpid(), dest=0)
    sys.exit(int(sys.argv[1]))
peer = comm.recv(source=1)
# Work on until rank 1's process is gone (the launcher reaped it), and a little longer:
# a launcher that stops the job when rank 1 exits would have stopped this rank by then.
while True:
    try:
        os.kill(peer, 0)
    except ProcessLookupError:
        break
    time.sleep(0.01)
time.sleep(0.5)
print("rank 0 finished its work", flush=True)
