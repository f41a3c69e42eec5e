"""shoal's own ``MPI`` namespace, mirroring ``mpi4py.MPI`` (see :mod:`shoal.MPI`).

Only names are gathered here; each concept lives in its own module:
constants and ``Exception`` in :mod:`.constants`, datatypes and buffer specs in
:mod:`.datatypes`, operators in :mod:`.ops`, groups in :mod:`.group`, requests
in :mod:`.request`, communicators in :mod:`.comm` and :mod:`.collectives`.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import environment as _environment
from shoal.spmd import world
from shoal.spmd.bufcoll import Intracomm
from shoal.spmd.comm import Comm
from shoal.spmd.constants import *
from shoal.spmd.datatypes import *
from shoal.spmd.environment import *
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
# mpi4py initialises MPI when MPI is imported, unless mpi4py.rc says not to: so does this
# (world.mark_initialized: a rank that leaves after this without finalizing breaks the
# job; see shoal.launch.control.judge_exit).
_environment.bootstrap((COMM_SELF, COMM_WORLD))


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
    "annotations", "time", "world", "Any")] + ["_typedict"]
