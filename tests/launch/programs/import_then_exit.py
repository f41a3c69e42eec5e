"""Every rank imports shoal's MPI (which initialises it, as mpi4py's import does); rank 1
then leaves with os._exit(0) before any message, while rank 0 waits for one from it."""

import os

from shoal import MPI

comm = MPI.COMM_WORLD
if comm.rank == 1:
    os._exit(0)
comm.recv(source=1)
