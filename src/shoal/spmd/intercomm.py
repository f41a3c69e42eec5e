"""``MPI.Intercomm``: two groups of a job's ranks joined; dynamic processes, said exactly.

An intercommunicator joins two disjoint groups of one job's ranks (MPI's
``Intracomm.Create_intercomm``, ``Intercomm.Create_from_groups``): a process
addresses the *remote* group in point-to-point calls (a destination or source is a
rank there, a status's source too), its own rank and size are the *local* group's,
and collectives run from one group to the other (:mod:`.intercoll`).  ``Merge``
makes one intracommunicator of both groups, ``Split`` and ``Dup`` new
intercommunicators; ``MPI._commctx_inter`` gives libraries (pkl5) a private
duplicate, the local group and which group is the "low" one.

The record (:class:`InterRecord`) keeps the remote group's world ranks where an
intracommunicator keeps its members (``ranks``, ``index``: what point-to-point and
the collective plumbing address), and the local group beside them.  The context is
agreed without a message of its own: each group proposes its local communicator's
next context (every member computes the same), the leaders exchange their proposals
with the groups' members over the peer communicator, and both sides derive the
context from the two; ``Create_from_groups`` derives it from the two groups and the
tag string, as ``Intracomm.Create_from_group`` does.

What shoal does not build is dynamic processes: new ranks cannot join a running job,
so there is no ``Spawn``, ``Connect``/``Accept``, ``Join`` nor name publishing (the
README's list of unsupported MPI features); each raises ``NotImplementedError`` with
that reason, which is how mpi4py reports a feature the MPI library lacks.
``Comm.Get_parent()`` returns ``MPI_COMM_NULL`` (typed ``Intercomm``), as in every
process that was not spawned.
"""

from __future__ import annotations

import zlib
from typing import Any

from shoal.spmd import attrs, world
from shoal.spmd import constants as C
from shoal.spmd.comm import Intracomm
from shoal.spmd.comm import no_dynamic_processes as _unsupported
from shoal.spmd.commbase import _NULL_COMM, CommBase, CommRecord
from shoal.spmd.datatypes import INT
from shoal.spmd.group import Group
from shoal.spmd.info import as_record
from shoal.spmd.intercoll import InterCollectives
from shoal.spmd.ops import BAND
from shoal.spmd.request import Request
from shoal.spmd.ulfm import _AGREE_SALT

_CREATE_SALT = 0x1E7E0C0  # the salts of the contexts made here
_LOCAL_SALT = 0x10CA1
_PRIVATE_SALT = 0x706B6C36
_FROM_GROUPS = -6  # the "parent" context of Create_from_groups


class InterRecord(CommRecord):
    """An intercommunicator's shared state: ``ranks``/``index`` are the remote group's
    (whom point-to-point addresses), ``local``/``local_index`` this process's group."""

    inter = True

    __slots__ = ("local", "local_index", "low", "local_comm")

    def __init__(self, local: tuple[int, ...], remote: tuple[int, ...], ctx: int,
                 low: bool, name: str = "") -> None:
        super().__init__(remote, ctx, name)
        self.local = local
        self.local_index = {w: i for i, w in enumerate(local)}
        self.low = low  # this group comes first where Merge's "high" does not say
        self.local_comm: Any = None  # the local group's private intracommunicator


def _low(local: tuple[int, ...], remote: tuple[int, ...]) -> bool:
    """The group holding the lowest world rank is the low one (both sides agree)."""
    return min(local) < min(remote)


class Intercomm(InterCollectives):
    """mpi4py's ``Intercomm`` (see the module's docstring)."""

    __module__ = "shoal.MPI"
    _info: Any

    @classmethod
    def _accepts(cls, record: Any) -> bool:
        return record is _NULL_COMM or record.inter

    @classmethod
    def _create(cls, local: tuple[int, ...], remote: tuple[int, ...], ctx: int,
                name: str = "") -> Intercomm:
        obj = cls.__new__(cls)
        obj._info = InterRecord(local, remote, ctx, _low(local, remote), name)
        obj._load()
        return obj

    def _load(self) -> None:
        super()._load()
        record = self._info
        if record.inter:  # (the rank is the local group's; the size stays the remote's)
            self._rank = record.local_index.get(world.world_rank(), C.UNDEFINED)

    def _local_comm(self) -> Intracomm:
        """The local group as an intracommunicator of its own, private to this one (made
        by each member without talking: its context is derived from this one's)."""
        record = self._info
        with record.lock:
            if record.local_comm is None:
                ctx = world.derive_context(self._ctx, -3, salt=_LOCAL_SALT ^ min(record.local))
                record.local_comm = Intracomm._make(record.local, ctx)
            comm: Intracomm = record.local_comm
            return comm

    # -- the two groups ------------------------------------------------------------------

    def Is_inter(self) -> bool:
        self._engine_free_check()
        return True

    def Is_intra(self) -> bool:
        self._engine_free_check()
        return False

    def Get_size(self) -> int:
        self._engine_free_check()
        return len(self._info.local)

    def Get_group(self) -> Group:
        self._engine_free_check()
        return Group(self._info.local, world.world_rank())

    def Get_remote_group(self) -> Group:
        self._engine_free_check()
        return Group(self._ranks, world.world_rank())

    def Get_remote_size(self) -> int:
        self._engine_free_check()
        return self._size

    @property
    def remote_group(self) -> Group:
        return self.Get_remote_group()

    @property
    def remote_size(self) -> int:
        return self.Get_remote_size()

    # -- new communicators -----------------------------------------------------------------

    def _like(self, ctx: int, local: tuple[int, ...] | None = None,
              remote: tuple[int, ...] | None = None) -> Intercomm:
        """One of this class on context ``ctx``, of this one's groups or those given."""
        return type(self)._create(self._info.local if local is None else local,
                                  self._ranks if remote is None else remote, ctx)

    def Dup(self, info: Any = None) -> Any:
        self._engine_free_check()
        record = self._info
        comm = self._like(self._next_context())
        comm._info.attrs = attrs.copy_attrs(self, record.attrs)
        comm._info.hints = dict(record.hints) if info is None else as_record(info)
        comm._info.errhandler = record.errhandler
        return comm

    def _exchange(self, value: Any, what: str) -> Any:
        """``value`` of this group's leader given to the remote group, and the remote
        leader's received: every member of both groups calls it, with its group's
        value (the leaders' count)."""
        tag = self._tag()
        theirs = self._cxchg_obj(value, 0, tag, what) if self._rank == 0 else None
        return self._local_comm().bcast(theirs, 0)

    def Merge(self, high: bool = False) -> Intracomm:
        """One intracommunicator of both groups: the group that passed ``high=False``
        first (where both passed the same, the group holding the lowest world rank)."""
        self._engine_free_check()
        ctx = self._next_context()
        high = bool(high)
        remote_high = self._exchange(high, "Merge")
        first = self._info.low if high == remote_high else not high
        local, remote = self._info.local, self._ranks
        return Intracomm._make(local + remote if first else remote + local, ctx)

    def Split(self, color: int = 0, key: int = 0) -> Any:
        """Intercommunicators of the processes of each ``color``: the local ones ordered by
        ``key`` (then rank) against the remote ones of the same color; ``COMM_NULL`` for
        ``MPI.UNDEFINED`` or a color the remote group lacks."""
        self._engine_free_check()
        context = self._next_context()
        undefined = color == C.UNDEFINED or color is None
        if not undefined and (not isinstance(color, int) or color < 0):
            raise C.Exception(C.ERR_ARG, f"Split: color must be a non-negative int or "
                                         f"MPI.UNDEFINED, not {color!r}")
        table = self._local_comm().allgather(None if undefined else (color, key))
        remote_table = self._exchange(table, "Split")
        if undefined:
            return type(self)()

        def members(entries: list[Any], ranks: tuple[int, ...]) -> tuple[int, ...]:
            chosen = sorted((e[1], i) for i, e in enumerate(entries)
                            if e is not None and e[0] == color)
            return tuple(ranks[i] for _, i in chosen)

        local = members(table, self._info.local)
        remote = members(remote_table, self._ranks)
        if not remote:
            return type(self)()
        return self._like(world.derive_context(context, 1, salt=color), local, remote)

    def Create(self, group: Any) -> Any:
        """An intercommunicator of ``group`` (part of the local group) against the part of
        the remote group that the remote processes name; ``COMM_NULL`` outside it, or
        where the remote part is empty."""
        self._engine_free_check()
        context = self._next_context()
        ranks = tuple(group._ranks or ())
        if not set(ranks) <= set(self._info.local):
            raise C.Exception(C.ERR_GROUP, "Create: the group has processes outside this "
                                           "intercommunicator's local group")
        remote = tuple(self._exchange(ranks, "Create"))
        if world.world_rank() not in ranks or not remote:
            return type(self)()
        return self._like(world.derive_context(context, 1), ranks, remote)

    def Create_group(self, group: Any, tag: int = 0) -> Any:
        self._engine_free_check()
        raise C.Exception(C.ERR_COMM, "Create_group is not defined on an intercommunicator: "
                                      "call it on an intracommunicator")

    # -- fault tolerance (ULFM) on both groups -------------------------------------------------

    def _agreement(self) -> Any:
        """Agreements run on a shadow intercommunicator of their own (see ulfm.py)."""
        self._engine_free_check()
        record = self._info
        if record.agree is None:
            ctx = world.derive_context(self._ctx, -1, _AGREE_SALT)
            record.agree = self._like(ctx)
        return record.agree

    def Iagree(self, flag: Any) -> Request:
        """The AND of the remote group's flags (ULFM's rule for intercommunicators)."""
        view = memoryview(flag)  # not a buffer: TypeError, as in mpi4py
        if view.format != "i" or view.nbytes != view.itemsize or view.readonly:
            raise ValueError("flag: expecting a writable int buffer of length one")
        return self._agreement().Iallreduce([bytes(view), INT], [view, INT], BAND)

    def Shrink(self) -> Any:
        """No process of a running shoal job has failed: both groups, on a new context."""
        self._engine_free_check()
        comm = self._like(self._next_context())
        comm._info.errhandler = self._info.errhandler
        return comm

    @classmethod
    def Create_from_groups(cls, local_group: Any, local_leader: int, remote_group: Any,
                           remote_leader: int, stringtag: str = "org.mpi4py",
                           info: Any = None, errhandler: Any = None) -> Intercomm:
        """An intercommunicator of two groups, called by every member of both with the
        same ``stringtag`` (MPI 4's sessions model: no parent communicator needed)."""
        local = tuple(local_group._members())
        remote = tuple(remote_group._members())
        if world.world_rank() not in local:
            raise C.Exception(C.ERR_GROUP, "Create_from_groups: the calling process is not "
                                           "in the local group")
        if not remote:
            raise C.Exception(C.ERR_GROUP, "Create_from_groups: the remote group is empty")
        if set(local) & set(remote):
            raise C.Exception(C.ERR_GROUP, "Create_from_groups: the local and remote "
                                           "groups overlap")
        for leader, group, which in ((local_leader, local, "local"),
                                     (remote_leader, remote, "remote")):
            if not 0 <= leader < len(group):
                raise C.Exception(C.ERR_RANK, f"Create_from_groups: invalid {which} leader "
                                              f"{leader} for a group of {len(group)}")
        first, second = sorted((local, remote))
        salt = zlib.crc32(repr((first, second, str(stringtag))).encode()) & 0x7FFFFFFF
        comm = cls._create(local, remote, world.derive_context(_FROM_GROUPS, 0, salt=salt))
        comm._info.hints = as_record(info)
        if errhandler is not None:
            comm._info.errhandler = errhandler
        return comm


def create_intercomm(comm: Intracomm, local_leader: int, peer_comm: Any, remote_leader: int,
                     tag: int) -> Intercomm:
    """``Intracomm.Create_intercomm``: ``comm``'s group joined to the group whose leader is
    ``remote_leader`` on ``peer_comm`` (see the module's docstring)."""
    comm._engine_free_check()
    size = comm.Get_size()
    if not 0 <= local_leader < size:
        raise C.Exception(C.ERR_RANK, f"Create_intercomm: invalid local leader {local_leader} "
                                      f"for a communicator of size {size}")
    proposal = comm._next_context()  # the same on every member of this group
    theirs = None
    if comm.Get_rank() == local_leader:
        if not isinstance(peer_comm, CommBase) or not peer_comm:
            raise C.Exception(C.ERR_COMM, "Create_intercomm: the peer communicator is "
                                          "COMM_NULL or not a communicator")
        peer: Any = peer_comm
        theirs = peer.sendrecv((comm._ranks, proposal), dest=remote_leader, sendtag=tag,
                               source=remote_leader, recvtag=tag)
    remote, remote_proposal = comm.bcast(theirs, root=local_leader)
    remote = tuple(remote)
    local = comm._ranks
    if set(local) & set(remote):
        raise C.Exception(C.ERR_COMM, "Create_intercomm: the local and remote groups "
                                      "overlap (each process may be in one of them only)")
    low, high = sorted((proposal, remote_proposal))
    return Intercomm._create(local, remote, world.derive_context(low, high, salt=_CREATE_SALT))


def commctx_inter(comm: Intercomm) -> tuple[Intercomm, int, Intracomm, bool]:
    """``MPI._commctx_inter``: a private duplicate of ``comm`` (the same on every member,
    made without talking), a fresh tag on it for each call, the local group's
    intracommunicator, and whether this is the low group (the smaller one; of two of one
    size, the one Merge puts first)."""
    record = comm._info
    with comm._lock("@commctx_inter"):
        if record.commctx is None:
            ctx = world.derive_context(comm._ctx, -2, salt=_PRIVATE_SALT)
            dup = comm._like(ctx)
            local, remote = len(record.local), len(comm._ranks)
            low = record.low if local == remote else local < remote
            record.commctx = [dup, 0, comm._local_comm(), low]
        state = record.commctx
        state[1] = (state[1] + 1) % (CommBase._tag_bound + 1)
        return state[0], state[1], state[2], state[3]


CommBase._INTER = Intercomm


def Open_port(info: Any = None) -> str:
    raise _unsupported("Open_port")


def Close_port(port_name: str) -> None:
    raise _unsupported("Close_port")


def Publish_name(service_name: str, port_name: str, info: Any = None) -> None:
    raise _unsupported("Publish_name")


def Unpublish_name(service_name: str, port_name: str, info: Any = None) -> None:
    raise _unsupported("Unpublish_name")


def Lookup_name(service_name: str, info: Any = None) -> str:
    raise _unsupported("Lookup_name")


__all__ = ["Intercomm", "Open_port", "Close_port", "Publish_name", "Unpublish_name",
           "Lookup_name"]
