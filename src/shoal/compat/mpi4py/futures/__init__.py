"""``mpi4py.futures`` on shoal: run calls in other processes, mpi4py's way.

Modes (mpi4py's documented semantics; see docs/mpi4py.md):

* ``MPIPoolExecutor(max_workers)`` in a rank of ``shoal run``: ``max_workers`` new
  processes start as a ``shoal run`` job of their own (their ``COMM_WORLD`` is the
  workers, as after MPI's Spawn), linked to the submitting rank over a private Unix
  socket; ``MPI.Comm.Get_parent()`` is not available there (shoal has no Spawn).
* ``shoal run -n N -m mpi4py.futures prog.py``: rank 0 runs ``prog.py``; ranks 1..N-1
  serve every ``MPIPoolExecutor`` it makes.
* ``MPICommExecutor(comm, root)``: the other ranks of ``comm`` serve the root.
* ``ThreadPoolExecutor`` / ``ProcessPoolExecutor``: threads / always-spawned processes.
"""

from shoal.compat.mpi4py.futures._base import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    InvalidStateError,
    TimeoutError,
    as_completed,
    wait,
)
from shoal.compat.mpi4py.futures.pool import (
    MPICommExecutor,
    MPIPoolExecutor,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    get_comm_workers,
)
from shoal.compat.mpi4py.futures.util import collect, compose

__all__ = [
    "Future", "Executor", "wait", "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED",
    "as_completed", "CancelledError", "TimeoutError", "InvalidStateError", "BrokenExecutor",
    "MPIPoolExecutor", "MPICommExecutor", "ThreadPoolExecutor", "ProcessPoolExecutor",
    "get_comm_workers", "collect", "compose",
]
