"""``MPI.Comm`` and ``MPI.Intracomm``: all the operations, assembled from one layer each.

    CommBase                  handle, group, names, hints, attributes (commbase.py)
      PointToPoint            send/recv, Send/Recv, probes, persistent (p2p.py)
        ObjectCollectives     bcast, reduce ..., Split, Create (collectives.py)
          BufferCollectives   Bcast, Reduce, Gather[v] ..., Alltoallw (bufcoll.py)
            Nonblocking...    Ibarrier, Ibcast ..., Bcast_init ... (nbc.py)
              FaultTolerance  Agree, Shrink, Get_failed ... (ulfm.py)
                Comm          Dup/Clone/Idup, attached buffers (here)
                  Intracomm   Create_from_group (here)

As in mpi4py, ``Comm`` has the operations of every communicator; ``Intracomm``
is what ``COMM_WORLD``, ``COMM_SELF``, ``Dup`` and ``Split`` give.
"""

from __future__ import annotations

import zlib
from typing import Any

from shoal.spmd import attrs, bsend, world
from shoal.spmd import constants as C
from shoal.spmd.commbase import CommBase, processor_name
from shoal.spmd.info import as_record
from shoal.spmd.request import Request, _always
from shoal.spmd.ulfm import FaultTolerance


def no_dynamic_processes(call: str) -> NotImplementedError:
    """What a call that needs dynamic processes raises."""
    return NotImplementedError(
        f"{call}: shoal has no dynamic processes: new ranks cannot join a running job "
        "(see the README's list of unsupported MPI features; mpi4py.futures works without "
        "them, and Intracomm.Create_intercomm joins groups of the job's own ranks)")


class Comm(FaultTolerance):
    """mpi4py's ``Comm``."""

    __module__ = "shoal.MPI"

    # -- duplicates --------------------------------------------------------------

    def Dup(self, info: Any = None) -> Any:
        self._engine_free_check()
        record = self._info
        comm = self._derived(self._ranks, self._next_context(), "", cls=type(self))
        comm._info.attrs = attrs.copy_attrs(self, record.attrs)
        comm._info.hints = dict(record.hints) if info is None else as_record(info)
        comm._info.errhandler = record.errhandler
        comm._info.topo = record.topo  # a duplicate keeps the topology
        return comm

    def Clone(self) -> Any:
        return self.Dup()

    def Dup_with_info(self, info: Any) -> Any:
        return self.Dup(info)

    def Idup(self, info: Any = None) -> tuple[Any, Request]:
        """A duplicate now (shoal's needs no communication) and a completed request."""
        return self.Dup(info), Request._make(_always, None)

    def Idup_with_info(self, info: Any) -> tuple[Any, Request]:
        return self.Idup(info)

    # -- buffered sends ---------------------------------------------------------------

    @classmethod
    def Get_parent(cls) -> Any:
        """``MPI_COMM_NULL`` (an ``Intercomm``): a shoal rank is never spawned."""
        from shoal.spmd.intercomm import Intercomm

        return Intercomm()

    @classmethod
    def Join(cls, fd: int) -> Any:
        raise no_dynamic_processes("Comm.Join")

    def Attach_buffer(self, buf: Any) -> None:
        self._engine_free_check()
        bsend.attach(self._info, buf)

    def Detach_buffer(self) -> Any:
        self._engine_free_check()
        return bsend.detach(self._info)

    def Flush_buffer(self) -> None:
        self._engine_free_check()
        bsend.flush(self._info)

    def Iflush_buffer(self) -> Request:
        self.Flush_buffer()
        return Request._make(_always, None)


class Intracomm(Comm):
    """mpi4py's ``Intracomm``."""

    __module__ = "shoal.MPI"

    @classmethod
    def _accepts(cls, record: Any) -> bool:
        return not record.inter

    # -- dynamic processes: not built; intercommunicators of the job's ranks (intercomm.py) --

    def Spawn(self, command: Any, args: Any = None, maxprocs: int = 1, info: Any = None,
              root: int = 0, errcodes: Any = None) -> Any:
        raise no_dynamic_processes("Intracomm.Spawn")

    def Spawn_multiple(self, command: Any, args: Any = None, maxprocs: Any = None,
                       info: Any = None, root: int = 0, errcodes: Any = None) -> Any:
        raise no_dynamic_processes("Intracomm.Spawn_multiple")

    def Accept(self, port_name: str, info: Any = None, root: int = 0) -> Any:
        raise no_dynamic_processes("Intracomm.Accept")

    def Connect(self, port_name: str, info: Any = None, root: int = 0) -> Any:
        raise no_dynamic_processes("Intracomm.Connect")

    def Create_intercomm(self, local_leader: int, peer_comm: Any, remote_leader: int,
                         tag: int = 0) -> Any:
        """An intercommunicator joining this group to the one whose leader is
        ``remote_leader`` on ``peer_comm`` (see intercomm.py)."""
        from shoal.spmd.intercomm import create_intercomm

        return create_intercomm(self, local_leader, peer_comm, remote_leader, tag)

    # -- topologies (see topo.py) ---------------------------------------------------

    def Create_cart(self, dims: Any, periods: Any = None, reorder: bool = False) -> Any:
        from shoal.spmd import topo

        return topo.create_cart(self, dims, periods, reorder)

    def Create_graph(self, index: Any, edges: Any, reorder: bool = False) -> Any:
        from shoal.spmd import topo

        return topo.create_graph(self, index, edges, reorder)

    def Create_dist_graph_adjacent(self, sources: Any, destinations: Any,
                                   sourceweights: Any = None, destweights: Any = None,
                                   info: Any = None, reorder: bool = False) -> Any:
        from shoal.spmd import topo

        return topo.create_dist_graph_adjacent(self, sources, destinations, sourceweights,
                                               destweights)

    def Create_dist_graph(self, sources: Any, degrees: Any, destinations: Any,
                          weights: Any = None, info: Any = None, reorder: bool = False) -> Any:
        from shoal.spmd import topo

        return topo.create_dist_graph(self, sources, degrees, destinations, weights)

    def Cart_map(self, dims: Any, periods: Any = None) -> int:
        from shoal.spmd import topo

        return topo.cart_map(self, dims, periods)

    def Graph_map(self, index: Any, edges: Any) -> int:
        from shoal.spmd import topo

        return topo.graph_map(self, index, edges)

    @classmethod
    def Create_from_group(cls, group: Any, stringtag: str = "org.mpi4py", info: Any = None,
                          errhandler: Any = None) -> Any:
        """A communicator of ``group``'s members, each of which calls this with the same
        ``stringtag`` (MPI 4's sessions model: no parent communicator needed)."""
        ranks = tuple(group._members())
        if world.world_rank() not in ranks:
            raise C.Exception(C.ERR_GROUP, "Create_from_group: the calling process is not "
                              "in the group")
        salt = zlib.crc32(repr((ranks, str(stringtag))).encode()) & 0x7FFFFFFF
        comm = cls._make(ranks, world.derive_context(-4, len(ranks), salt=salt))
        comm._info.hints = as_record(info)
        if errhandler is not None:
            comm._info.errhandler = errhandler
        return comm


CommBase._INTRA = Intracomm
CommBase._COMM = Comm


# -- mpi4py's helpers for libraries built on it (mpi4py.util.pkl5 ...) ----------------

def _comm_lock_table(comm: Any) -> dict[Any, Any]:
    """The communicator's table of named locks (``MPI._comm_lock_table``)."""
    return comm._info.locks


def _comm_lock(comm: Any, key: Any = None) -> Any:
    """A lock of this communicator, one per ``key`` (``MPI._comm_lock``)."""
    return comm._lock(key)


def _commctx_intra(comm: Any) -> tuple[Any, int]:
    """A private duplicate of ``comm`` (the same on every member, made without talking)
    and a fresh tag on it for each call (``MPI._commctx_intra``)."""
    record = comm._info
    with comm._lock("@commctx_intra"):
        if record.commctx is None:
            ctx = world.derive_context(comm._ctx, -2, salt=0x706B6C35)
            record.commctx = [Intracomm._make(comm._ranks, ctx), 0]
        state = record.commctx
        state[1] = (state[1] + 1) % (CommBase._tag_bound + 1)
        return state[0], state[1]


def _commctx_inter(comm: Any) -> tuple[Any, int, Any, bool]:
    """A private duplicate of the intercommunicator ``comm``, a fresh tag on it, the local
    group's intracommunicator and whether this is the low group (``MPI._commctx_inter``;
    see intercomm.py)."""
    from shoal.spmd.intercomm import commctx_inter

    info = getattr(comm, "_info", None)
    if info is None or not info.inter:
        raise C.Exception(C.ERR_COMM, "_commctx_inter: not an intercommunicator")
    return commctx_inter(comm)


__all__ = ["Comm", "Intracomm", "no_dynamic_processes", "processor_name", "_comm_lock",
           "_comm_lock_table", "_commctx_intra", "_commctx_inter"]
