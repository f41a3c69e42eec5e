"""What every communicator is: a handle on a group of world ranks and a context.

A communicator is an ordered tuple of world ranks plus a *context*: an even
number that tags its point-to-point messages (its collectives use the odd
number after it), so traffic on different communicators never mixes.  New
communicators get their context from :func:`shoal.spmd.world.derive_context`,
which every member computes alike without exchanging a message.

The shared state (ranks, context, name, counters, attributes, hints, error
handler, attached buffer) lives in a :class:`CommRecord`, the communicator's
"handle"; a wrapper keeps a copy of the fields the hot paths read (its ranks,
its rank, its size, its contexts), so ``MPI.Comm(comm)`` copies and subclasses
cost nothing per message.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from shoal.errors import SerializationError
from shoal.spmd import attrs, world
from shoal.spmd import constants as C
from shoal.spmd.buffers import parse_buffer
from shoal.spmd.engine import Engine, into_buffer
from shoal.spmd.group import Group
from shoal.spmd.handles import Handle, Record
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG, Message, PostedReceive
from shoal.spmd.objcodec import PICKLE
from shoal.spmd.objpath import ObjectPath
from shoal.spmd.request import Status, _fill
from shoal.wire.header import WAITS, split_parts

PROC_NULL = C.PROC_NULL
UNDEFINED = C.UNDEFINED
TAG_UPPER_BOUND = 2**31 - 1


def _error(error_class: int, text: str) -> C.Exception:
    return C.Exception(error_class, text)


class CommRecord(Record):
    """The shared state behind equal communicator handles."""

    inter = False  # an intercommunicator's (intercomm.InterRecord) says True

    __slots__ = ("ranks", "index", "ctx", "name", "serial", "coll_seq", "attrs", "hints",
                 "errhandler", "bsend", "lock", "locks", "commctx", "topo", "agree")

    def __init__(self, ranks: tuple[int, ...], ctx: int, name: str = "") -> None:
        super().__init__()
        self.ranks = ranks
        self.index = {w: i for i, w in enumerate(ranks)}
        self.ctx = ctx
        self.name = name
        self.serial = 0  # communicators derived from this one so far
        # The next collective's number on this one: count's next() is one step under the
        # GIL, so threads starting collectives at once each get their own without a lock.
        self.coll_seq = itertools.count(1)
        self.attrs: dict[int, Any] = {}
        self.hints: dict[str, str] = {}
        self.errhandler: Any = None
        self.bsend: Any = None  # the buffer attached with Comm.Attach_buffer
        self.lock = threading.Lock()  # for the counters, under THREAD_MULTIPLE
        self.locks: dict[Any, Any] = {}  # mpi4py's named communicator locks
        self.commctx: Any = None  # the private duplicate mpi4py.util.pkl5 asks for
        self.topo: Any = None  # a topology.Topology, for Cartesian and graph communicators
        self.agree: Any = None  # the shadow communicator Agree/Iagree run on (ulfm.py)


def as_rank(value: Any, what: str) -> int:
    """A rank given as another number (``nprocs / 2``): truncated, as mpi4py's C ``int``
    arguments do; anything else is a TypeError."""
    if isinstance(value, (str, bytes, bytearray)) or not hasattr(type(value), "__int__"):
        raise TypeError(f"the {what} rank must be an integer, not {type(value).__name__}")
    return int(value)


_NULL_COMM = CommRecord((), -2, "MPI_COMM_NULL")
# The user-defined error handlers alive now (a handle or a communicator holds them).
_USER_ERRHANDLERS: weakref.WeakSet[Any] = weakref.WeakSet()
_USER_ERRHANDLERS_LOCK = threading.Lock()


class CommBase(Handle):
    """The handle, the cached fields and the helpers every operation uses."""

    __module__ = "shoal.MPI"
    _NULL = _NULL_COMM
    _INTRA: ClassVar[type]  # the class of communicators made from groups (set by comm.py)
    _COMM: ClassVar[type]  # the class of COMM_NULL (set by comm.py)
    _INTER: ClassVar[type]  # the class of intercommunicators (set by intercomm.py)
    _TOPOLOGIES: ClassVar[dict[int, type]] = {}  # topology kind -> class (set by topo.py)
    _tag_bound = TAG_UPPER_BOUND
    _info: CommRecord

    _ranks: tuple[int, ...]
    _index: dict[int, int]
    _rank: int
    _size: int
    _ctx: int
    _cctx: int
    _freed: bool
    _path: Any  # an ObjectPath or None (see shoal.spmd.objpath)
    _partners: tuple[int, ...]

    def __new__(cls, comm: Any = None) -> Any:
        obj = Handle.__new__(cls, comm)
        if comm is not None and obj._info is not _NULL_COMM and not cls._accepts(obj._info):
            raise TypeError(f"a {type(comm).__name__} of this kind is not a {cls.__name__}")
        obj._load()
        return obj

    @classmethod
    def _accepts(cls, record: Any) -> bool:
        """Whether a communicator with this record may be wrapped as this class."""
        return True

    def _load(self) -> None:
        """Copy the record's fields the hot paths read."""
        record = self._info
        self._ranks = record.ranks
        self._index = record.index
        self._rank = record.index.get(world.world_rank(), UNDEFINED)
        self._size = len(record.ranks)
        self._ctx = record.ctx
        self._cctx = record.ctx + 1
        self._freed = record is _NULL_COMM
        # send and recv of a plain value in one step, where compiled (once freed, it has
        # no ranks: it declines everything)
        self._path = (None if ObjectPath is None else
                      ObjectPath(record.ranks, record.ctx, self._tag_bound, world, PICKLE))
        # Each step's partner (world rank) of a recursive doubling among all members,
        # where the size is a power of two (short Allreduce): () where there is none.
        size, rank = self._size, self._rank
        if size > 1 and not size & (size - 1) and 0 <= rank < size:
            steps = range(size.bit_length() - 1)
            self._partners = tuple(record.ranks[rank ^ (1 << k)] for k in steps)
        else:
            self._partners = ()

    @classmethod
    def _make(cls, ranks: tuple[int, ...], ctx: int, name: str = "") -> Any:
        """A communicator of these world ranks on this context (every member makes it)."""
        obj = Handle.__new__(cls)
        obj._info = CommRecord(ranks, ctx, name) if ranks else _NULL_COMM
        obj._load()
        return obj

    @classmethod
    def _from_record(cls, record: Any) -> Any:
        kind = (cls._COMM if record is _NULL_COMM else cls._INTER if record.inter
                else cls._INTRA)
        if record.topo is not None:
            kind = cls._TOPOLOGIES[record.topo.kind]
        obj: Any = Handle.__new__(kind)
        obj._info = record
        obj._load()
        return obj

    def _derived(self, ranks: tuple[int, ...], ctx: int, name: str = "",
                 cls: Any = None) -> Any:
        """A new communicator (of ``cls``, or this one's class) with its own record."""
        kind: Any = cls or type(self)
        obj = kind.__new__(kind)
        obj._info = CommRecord(ranks, ctx, name) if ranks else _NULL_COMM
        obj._load()
        return obj

    def _null(self, cls: Any = None) -> Any:
        kind: Any = cls or type(self)
        return kind.__new__(kind)

    # -- checks -----------------------------------------------------------------

    def _engine(self) -> Engine:
        if self._freed:
            raise _error(C.ERR_COMM, "invalid communicator (COMM_NULL or freed)")
        return world.engine()

    def _engine_free_check(self) -> None:
        if self._freed:
            raise _error(C.ERR_COMM, "invalid communicator (COMM_NULL or freed)")

    def _world_rank(self, rank: int, what: str) -> int:
        if 0 <= rank < self._size:
            try:
                return self._ranks[rank]
            except TypeError:
                return self._ranks[as_rank(rank, what)]
        raise _error(C.ERR_RANK, f"invalid {what} rank {rank} for a communicator of size "
                                 f"{self._size}")

    def _comm_rank(self, world_rank: int) -> int:
        return self._index.get(world_rank, world_rank)

    def _source(self, source: int) -> int:
        if 0 <= source < self._size:
            try:
                return self._ranks[source]
            except TypeError:
                return self._ranks[as_rank(source, "source")]
        if source == ANY_SOURCE:
            return ANY_SOURCE
        return self._world_rank(source, "source")

    def _check_send_tag(self, tag: int) -> None:
        if not 0 <= tag <= self._tag_bound:
            raise _error(C.ERR_TAG, f"invalid tag {tag}: tags are 0..{self._tag_bound}")

    def _check_recv_tag(self, tag: int) -> None:
        if tag != ANY_TAG and not 0 <= tag <= self._tag_bound:
            raise _error(C.ERR_TAG, f"invalid tag {tag}: tags are 0..{self._tag_bound} "
                                    "or ANY_TAG")

    def _check_dest(self, dest: int) -> None:
        if dest != PROC_NULL:
            self._world_rank(dest, "destination")

    def _check_source(self, source: int) -> None:
        if source not in (PROC_NULL, ANY_SOURCE):
            self._world_rank(source, "source")

    # -- encoding ---------------------------------------------------------------

    def _encode(self, obj: Any, dest: int) -> list[Any]:
        try:
            return PICKLE.encode(obj)
        except SerializationError as exc:
            raise SerializationError(f"rank {self._rank} cannot send to rank {dest}: {exc}"
                                     ) from None

    def _decode(self, message: Message) -> Any:
        body = message.body if message.body is not None else b""
        if message.nparts == 1:
            return PICKLE.decode((body,))
        return PICKLE.decode(split_parts(memoryview(body), message.nparts))

    def _copy_into(self, buf: Any, message: Message) -> None:
        spec = parse_buffer(buf, readonly=False)
        into_buffer(message, spec.view)
        spec.commit()

    def _describe(self, call: str, peer: int, tag: int) -> Callable[[], str]:
        return lambda: _blocked_in(self, call, peer, tag)

    # -- the low-level verbs every method is made of --------------------------

    def _start_send(self, parts: list[Any], dest: int, tag: int, flags: int, ctx: int
                    ) -> Any:
        return self._engine().send(self._world_rank(dest, "destination"), ctx, tag, parts, flags)

    def _send_parts(self, parts: list[Any], dest: int, tag: int, flags: int, ctx: int,
                    call: str) -> None:
        # WAITS: this rank waits for the send, so it makes progress (and may be asked to
        # write half of a large message into the receiver itself: engine._pull_halves).
        outgoing = self._start_send(parts, dest, tag, flags | WAITS, ctx)
        if not outgoing.done:
            world.engine().wait_until(lambda: outgoing.done, self._describe(call, dest, tag))

    def _post(self, source: int, tag: int, ctx: int, buffer: memoryview | None = None
              ) -> PostedReceive:
        receive = PostedReceive(ctx, self._source(source), tag, buffer)
        self._engine().post(receive)
        return receive

    def _peeker(self, receive: PostedReceive) -> Callable[[Status], None]:
        """Fills a status from a completed receive without completing the request."""
        def peek(status: Status) -> None:
            message = receive.message
            if receive.cancelled or message is None:
                _fill(status, ANY_SOURCE, ANY_TAG, 0, cancelled=receive.cancelled)
            else:
                _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return peek

    def _lock(self, key: Any) -> Any:
        """This communicator's lock named ``key`` (mpi4py's ``_comm_lock``)."""
        record = self._info
        with record.lock:
            lock = record.locks.get(key)
            if lock is None:
                lock = record.locks[key] = threading.Lock()
            return lock

    def _next_context(self, salt: int = 0) -> int:
        record = self._info
        with record.lock:
            record.serial += 1
            serial = record.serial
        return world.derive_context(self._ctx, serial, salt)

    # -- the group ---------------------------------------------------------------

    def Get_rank(self) -> int:
        self._engine_free_check()
        return self._rank

    def Get_size(self) -> int:
        self._engine_free_check()
        return self._size

    @property
    def rank(self) -> int:
        return self.Get_rank()

    @property
    def size(self) -> int:
        return self.Get_size()

    def Get_group(self) -> Group:
        self._engine_free_check()
        return Group(self._ranks, world.world_rank())

    @property
    def group(self) -> Group:
        return self.Get_group()

    def Compare(self, comm: Any) -> int:
        self._engine_free_check()
        comm._engine_free_check()
        if self._info is comm._info:
            return C.IDENT
        if self._info.inter != comm._info.inter:
            return C.UNEQUAL
        mine: tuple[tuple[int, ...], ...] = (self._ranks,)
        theirs: tuple[tuple[int, ...], ...] = (comm._ranks,)
        record: Any = self._info
        if record.inter:  # both groups of both intercommunicators (intercomm.py)
            mine, theirs = (record.local, *mine), (comm._info.local, *theirs)
        if mine == theirs:
            return C.CONGRUENT
        if [sorted(g) for g in mine] == [sorted(g) for g in theirs]:
            return C.SIMILAR
        return C.UNEQUAL

    # -- life cycle ----------------------------------------------------------------

    def Free(self) -> None:
        if self._freed:
            raise _error(C.ERR_COMM, "this communicator is already freed (or COMM_NULL)")
        if self._ctx in (0, 2):
            raise _error(C.ERR_COMM, "COMM_WORLD and COMM_SELF cannot be freed")
        attrs.delete_all(self, self._info.attrs)
        self._info = _NULL_COMM
        self._load()

    def _predefined(self) -> bool:
        return self._ctx in (0, 2) or self._info is _NULL_COMM

    def Disconnect(self) -> None:
        """Free the communicator (its sends already left or are queued in the engine,
        which delivers them whatever happens to the communicator)."""
        self._engine_free_check()
        world.engine().progress()
        self.Free()

    # -- names, kinds ----------------------------------------------------------------

    def Get_name(self) -> str:
        return self._info.name

    def Set_name(self, name: str) -> None:
        self._engine_free_check()
        self._info.name = str(name)

    @property
    def name(self) -> str:
        return self._info.name

    @name.setter
    def name(self, value: str) -> None:
        self.Set_name(value)

    def Is_inter(self) -> bool:
        self._engine_free_check()
        return False

    def Is_intra(self) -> bool:
        self._engine_free_check()
        return True

    @property
    def is_inter(self) -> bool:
        return self.Is_inter()

    @property
    def is_intra(self) -> bool:
        return self.Is_intra()

    def Get_topology(self) -> int:
        self._engine_free_check()
        topology = self._info.topo
        return UNDEFINED if topology is None else int(topology.kind)

    @property
    def topology(self) -> int:
        return self.Get_topology()

    @property
    def is_topo(self) -> bool:
        return self.Get_topology() != UNDEFINED

    # -- hints --------------------------------------------------------------------

    def Set_info(self, info: Any) -> None:
        from shoal.spmd.info import as_record

        self._engine_free_check()
        self._info.hints.update(as_record(info))

    def Get_info(self) -> Any:
        from shoal.spmd.info import Info

        self._engine_free_check()
        return Info.Create(self._info.hints)

    @property
    def info(self) -> Any:
        return self.Get_info()

    @info.setter
    def info(self, value: Any) -> None:
        self.Set_info(value)

    # -- error handlers ----------------------------------------------------------------

    @classmethod
    def Create_errhandler(cls, errhandler_fn: Callable[[Any, int], None]) -> C.Errhandler:
        from shoal.spmd.constants import _ErrhandlerRecord

        if not callable(errhandler_fn):
            raise TypeError(f"'{type(errhandler_fn).__name__}' object is not callable")
        with _USER_ERRHANDLERS_LOCK:
            if len(_USER_ERRHANDLERS) >= 32:
                # mpi4py's limit: 32 user-defined error handlers per kind of object
                raise RuntimeError("cannot create too many user-defined error handlers")
            record = _ErrhandlerRecord("user", errhandler_fn)
            _USER_ERRHANDLERS.add(record)
        return C.Errhandler._wrap(record)

    def Get_errhandler(self) -> C.Errhandler:
        self._engine_free_check()
        current = self._info.errhandler
        return C.Errhandler._wrap((current or C.ERRORS_RETURN)._info)

    def Set_errhandler(self, errhandler: C.Errhandler) -> None:
        # Errors always raise MPI.Exception, as mpi4py does with ERRORS_RETURN.
        self._engine_free_check()
        if not isinstance(errhandler, C.Errhandler) or not errhandler:
            raise _error(C.ERR_ARG, "Set_errhandler needs an MPI.Errhandler (not "
                                    "ERRHANDLER_NULL)")
        self._info.errhandler = errhandler

    def Call_errhandler(self, errorcode: int) -> None:
        self._engine_free_check()
        current = self._info.errhandler
        function = current._info.function if current is not None else None
        if function is not None:
            function(self, int(errorcode))
        elif current is not None and current._info.name in ("ERRORS_ARE_FATAL",
                                                             "ERRORS_ABORT"):
            self.Abort(int(errorcode))

    # -- attributes ---------------------------------------------------------------------

    def Get_attr(self, keyval: int) -> Any:
        self._engine_free_check()
        predefined = {C.TAG_UB: TAG_UPPER_BOUND, C.IO: ANY_SOURCE, C.WTIME_IS_GLOBAL: 0,
                      C.LASTUSEDCODE: C.last_used_code(), C.UNIVERSE_SIZE: None,
                      C.APPNUM: None}
        if keyval in predefined:
            return predefined[keyval]
        return attrs.get_attr(self._info.attrs, keyval)

    def Set_attr(self, keyval: int, attrval: Any) -> None:
        self._engine_free_check()
        attrs.set_attr(self, self._info.attrs, keyval, attrval)

    def Delete_attr(self, keyval: int) -> None:
        self._engine_free_check()
        attrs.delete_attr(self, self._info.attrs, keyval)

    @classmethod
    def Create_keyval(cls, copy_fn: Any = None, delete_fn: Any = None,
                      nopython: bool = False) -> int:
        return attrs.create_keyval(copy_fn, delete_fn, nopython)

    @classmethod
    def Free_keyval(cls, keyval: int) -> int:
        return attrs.free_keyval(keyval)

    def Abort(self, errorcode: int = 0) -> None:
        from shoal.launch.control import report

        report("abort", code=int(errorcode), rank=world.world_rank(),
               message=f"MPI_Abort({errorcode}) called on rank {world.world_rank()}")
        os._exit(int(errorcode) & 0xFF or 1 if errorcode else 0)


CommBase._FAMILY = CommBase


def _blocked_in(comm: Any, call: str, peer: int, tag: int) -> str:
    """What a rank waits for, as ``shoal run --timeout`` reports it."""
    who = "ANY_SOURCE" if peer == ANY_SOURCE else str(peer)
    label = "ANY_TAG" if tag == ANY_TAG else str(tag)
    return f"{call}(source/dest={who}, tag={label}) on {comm.Get_name() or 'a communicator'}"


def processor_name() -> str:
    return socket.gethostname()
