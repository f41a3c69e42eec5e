"""Rank 1 finishes with sys.exit(3); then rank 2 leaves with os._exit(0), unfinalized,
while rank 0 waits for a message from rank 2 that never comes."""

import os
import sys
import time

from shoal import MPI

comm = MPI.COMM_WORLD
if comm.rank == 1:
    comm.send(os.getpid(), dest=2)
    sys.exit(3)
if comm.rank == 2:
    peer = comm.recv(source=1)
    while True:  # until rank 1 is gone (the launcher reaped it)
        try:
            os.kill(peer, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    os._exit(0)
comm.recv(source=2)
