"""shoal's own ``MPI`` namespace, mirroring ``mpi4py.MPI`` (see :mod:`shoal.MPI`).

Only names are gathered here; each concept lives in its own module:
constants and ``Exception`` in :mod:`.constants`, datatypes and buffer specs in
:mod:`.datatypes`, operators in :mod:`.ops`, groups in :mod:`.group`, requests
in :mod:`.request`, communicators in :mod:`.comm` and :mod:`.collectives`.
"""

from __future__ import annotations

import time
from typing import Any

from shoal.spmd import world
from shoal.spmd.bufcoll import Intracomm
from shoal.spmd.comm import Comm, processor_name
from shoal.spmd.constants import *
from shoal.spmd.constants import THREAD_SERIALIZED
from shoal.spmd.datatypes import *
from shoal.spmd.group import *
from shoal.spmd.ops import *
from shoal.spmd.request import (
    MESSAGE_NO_PROC,
    MESSAGE_NULL,
    REQUEST_NULL,
    Message,
    Request,
    Status,
)
from shoal.wire.codec import PICKLE as pickle
from shoal.wire.codec import Pickle

Prequest = Request
Grequest = Request

COMM_WORLD = Intracomm(tuple(range(world.world_size())), 0, "MPI_COMM_WORLD")
COMM_SELF = Intracomm((world.world_rank(),), 2, "MPI_COMM_SELF")
COMM_NULL = Intracomm()
# mpi4py initialises MPI when MPI is imported: so does this (a rank that leaves after
# this without finalizing breaks the job; see shoal.launch.control.judge_exit).
world.mark_initialized()

_start = time.perf_counter()


def Init() -> None:
    """Like mpi4py, which initialises MPI when ``MPI`` is imported: always too late."""
    from shoal.spmd.constants import ERR_OTHER
    from shoal.spmd.constants import Exception as MPIException

    raise MPIException(ERR_OTHER, "MPI is already initialized (it starts when shoal.MPI "
                                  "is imported, as with mpi4py); do not call MPI.Init()")


def Init_thread(required: int = THREAD_SERIALIZED) -> int:
    Init()
    return THREAD_SERIALIZED


def Query_thread() -> int:
    return THREAD_SERIALIZED


def Is_thread_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def Finalize() -> None:
    world.finalize()


def Is_initialized() -> bool:
    # mpi4py initialises MPI when the module is imported; so do we, lazily.
    return True


def Is_finalized() -> bool:
    return world.is_finalized()


def Wtime() -> float:
    return time.perf_counter()


def Wtick() -> float:
    return time.get_clock_info("perf_counter").resolution


def Get_processor_name() -> str:
    return processor_name()


def Get_version() -> tuple[int, int]:
    return (4, 1)


def Get_library_version() -> str:
    from shoal._version import __version__

    return f"shoal {__version__} (shared-memory runtime, mpi4py-compatible)"


def Abort(errorcode: int = 0) -> None:
    COMM_WORLD.Abort(errorcode)


def Compute_dims(nnodes: int, dims: Any) -> list[int]:
    """Balanced factorisation of ``nnodes`` over ``dims`` dimensions (MPI_Dims_create)."""
    ndims = dims if isinstance(dims, int) else len(dims)
    fixed = [0] * ndims if isinstance(dims, int) else list(dims)
    free = [i for i, d in enumerate(fixed) if d == 0]
    remaining = nnodes
    for d in fixed:
        if d:
            remaining //= d
    factors: list[int] = []
    n, p = remaining, 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    sizes = [1] * len(free)
    for factor in sorted(factors, reverse=True):
        sizes[sizes.index(min(sizes))] *= factor
    for index, value in zip(free, sorted(sizes, reverse=True), strict=True):
        fixed[index] = value
    return fixed


__all__ = [name for name in dir() if not name.startswith("_") and name not in (
    "annotations", "time", "world", "Any", "processor_name")] + ["_typedict"]
