"""shoal's own ``MPI`` namespace, mirroring ``mpi4py.MPI`` (see :mod:`shoal.MPI`).

Only names are gathered here; each concept lives in its own module:
constants and ``Exception`` in :mod:`.constants`, datatypes in
:mod:`.datatypes` (their type maps in :mod:`.derived`), buffer specs in
:mod:`.buffers`, operators in :mod:`.ops`, groups in :mod:`.group`, requests
in :mod:`.request`, hints in :mod:`.info`, memory in :mod:`.memory`,
communicators in :mod:`.comm` (and the layers it is made of), buffered sends
in :mod:`.bsend`, the object codec in :mod:`.objcodec`, the objects shoal
does not offer in :mod:`.absent`, MPI's environment (Init, Query_thread, Wtime ...)
in :mod:`.environment`.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import bsend, world
from shoal.spmd import environment as _environment
from shoal.spmd.absent import *
from shoal.spmd.comm import (
    Comm,
    Intracomm,
    _comm_lock,
    _comm_lock_table,
    _commctx_inter,
    _commctx_intra,
)
from shoal.spmd.commbase import _NULL_COMM, CommRecord
from shoal.spmd.constants import *
from shoal.spmd.datatypes import *
from shoal.spmd.derived import (
    COMBINER_CONTIGUOUS,
    COMBINER_DARRAY,
    COMBINER_DUP,
    COMBINER_F90_COMPLEX,
    COMBINER_F90_INTEGER,
    COMBINER_F90_REAL,
    COMBINER_HINDEXED,
    COMBINER_HINDEXED_BLOCK,
    COMBINER_HVECTOR,
    COMBINER_INDEXED,
    COMBINER_INDEXED_BLOCK,
    COMBINER_NAMED,
    COMBINER_RESIZED,
    COMBINER_STRUCT,
    COMBINER_SUBARRAY,
    COMBINER_VALUE_INDEX,
    COMBINER_VECTOR,
    DISTRIBUTE_BLOCK,
    DISTRIBUTE_CYCLIC,
    DISTRIBUTE_DFLT_DARG,
    DISTRIBUTE_NONE,
    ORDER_FORTRAN,
)
from shoal.spmd.environment import *
from shoal.spmd.group import *
from shoal.spmd.handles import addressof as _addressof
from shoal.spmd.handles import handleof as _handleof
from shoal.spmd.handles import sizeof as _sizeof
from shoal.spmd.info import *
from shoal.spmd.intercomm import *
from shoal.spmd.memory import *
from shoal.spmd.memory import LAZY as _LAZY
from shoal.spmd.message import MESSAGE_NO_PROC, MESSAGE_NULL, Message
from shoal.spmd.objcodec import PICKLE as pickle
from shoal.spmd.objcodec import Pickle
from shoal.spmd.ops import *
from shoal.spmd.request import REQUEST_NULL, Grequest, Prequest, Request
from shoal.spmd.status import Status
from shoal.spmd.topo import *


def _constant_comm(cls: Any, record: Any, name: str) -> Any:
    comm = cls._define(record, name)
    comm._load()
    return comm


COMM_NULL = _constant_comm(Comm, _NULL_COMM, "COMM_NULL")
COMM_WORLD = _constant_comm(Intracomm, CommRecord(tuple(range(world.world_size())), 0,
                                                  "MPI_COMM_WORLD"), "COMM_WORLD")
COMM_SELF = _constant_comm(Intracomm, CommRecord((world.world_rank(),), 2, "MPI_COMM_SELF"),
                           "COMM_SELF")
# mpi4py initialises MPI when MPI is imported, unless mpi4py.rc says not to: so does this
# (world.mark_initialized: a rank that leaves after this without finalizing breaks the
# job; see shoal.launch.control.judge_exit).
_environment.bootstrap((COMM_SELF, COMM_WORLD))


def Abort(errorcode: int = 0) -> None:
    COMM_WORLD.Abort(errorcode)


def Attach_buffer(buf: Any) -> None:
    """Attach a buffer for the buffered sends of every communicator of this process."""
    bsend.attach(None, buf)


def Detach_buffer() -> Any:
    return bsend.detach(None)


def Flush_buffer() -> None:
    bsend.flush(None)


def Iflush_buffer() -> Request:
    from shoal.spmd.request import _always

    bsend.flush(None)
    return Request._make(_always, None)


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


BufferAutomaticType = type(BUFFER_AUTOMATIC)
BottomType = type(BOTTOM)
InPlaceType = type(IN_PLACE)

__all__ = [name for name in dir() if not name.startswith("_") and name not in (
    "annotations", "world", "bsend", "Any", "CommRecord")] + [
    "_typedict", "_typedict_c", "_typedict_f", "_typecode", "_typealign", "_datatype_create",
    "_datatype_decode", "_sizeof", "_addressof", "_handleof", "_comm_lock",
    "_comm_lock_table", "_commctx_intra", "_commctx_inter", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    """``buffer`` and ``memory``, made on first use (:mod:`shoal.spmd.memory`)."""
    if name in _LAZY:
        from shoal.spmd import memory

        return getattr(memory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
