"""Communicators: point-to-point messages and communicator management.

A communicator is an ordered tuple of world ranks plus a *context*: an even
number that tags its point-to-point messages (its collectives use the odd
number after it), so traffic on different communicators never mixes.  New
communicators get their context from :func:`shoal.spmd.world.derive_context`,
which every member computes alike without exchanging a message.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from shoal.errors import SerializationError
from shoal.spmd import constants as C
from shoal.spmd import world
from shoal.spmd.buffers import buffer_view, parse_buffer
from shoal.spmd.engine import Engine, into_buffer
from shoal.spmd.group import Group
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG, Message, PostedReceive
from shoal.spmd.request import Message as MatchedMessage
from shoal.spmd.request import Request, Status, _fill
from shoal.wire.codec import PICKLE
from shoal.wire.header import PICKLED, SYNC, split_parts

PROC_NULL = C.PROC_NULL
UNDEFINED = C.UNDEFINED
TAG_UPPER_BOUND = 2**31 - 1


def _error(error_class: int, text: str) -> C.Exception:
    return C.Exception(error_class, text)


class Comm:
    """mpi4py's ``Comm``: point-to-point operations and management."""

    _tag_bound = TAG_UPPER_BOUND

    def __init__(self, ranks: tuple[int, ...] = (), ctx: int = -2, name: str = "") -> None:
        self._ranks = ranks
        self._index = {w: i for i, w in enumerate(ranks)}
        self._rank = self._index.get(world.world_rank(), UNDEFINED)
        self._size = len(ranks)
        self._ctx = ctx
        self._cctx = ctx + 1
        self._serial = 0  # communicators derived from this one so far
        self._coll_seq = 0  # collectives started on this one so far
        self._name = name
        self._freed = not ranks
        self._errhandler: Any = None

    # -- helpers ----------------------------------------------------------------

    def _engine(self) -> Engine:
        if self._freed:
            raise _error(C.ERR_COMM, "invalid communicator (COMM_NULL or freed)")
        return world.engine()

    def _world_rank(self, rank: int, what: str) -> int:
        if 0 <= rank < self._size:
            return self._ranks[rank]
        raise _error(C.ERR_RANK, f"invalid {what} rank {rank} for a communicator of size "
                                 f"{self._size}")

    def _comm_rank(self, world_rank: int) -> int:
        return self._index.get(world_rank, world_rank)

    def _source(self, source: int) -> int:
        if 0 <= source < self._size:
            return self._ranks[source]
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

    def _encode(self, obj: Any, dest: int) -> list[Any]:
        try:
            return PICKLE.dumps(obj)
        except SerializationError as exc:
            raise SerializationError(f"rank {self._rank} cannot send to rank {dest}: {exc}"
                                     ) from None

    def _decode(self, message: Message) -> Any:
        body = message.body if message.body is not None else b""
        if message.nparts == 1:
            return PICKLE.loads((body,))
        return PICKLE.loads(split_parts(memoryview(body), message.nparts))

    def _copy_into(self, buf: Any, message: Message) -> None:
        into_buffer(message, parse_buffer(buf, readonly=False).view)

    def _describe(self, call: str, peer: int, tag: int) -> Callable[[], str]:
        return lambda: _blocked_in(self, call, peer, tag)

    # -- the low-level verbs every method is made of --------------------------

    def _start_send(self, parts: list[Any], dest: int, tag: int, flags: int, ctx: int
                    ) -> Any:
        return self._engine().send(self._world_rank(dest, "destination"), ctx, tag, parts, flags)

    def _send_parts(self, parts: list[Any], dest: int, tag: int, flags: int, ctx: int,
                    call: str) -> None:
        outgoing = self._start_send(parts, dest, tag, flags, ctx)
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

    # -- object API: point to point -------------------------------------------

    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        # The hot path of the object API, written out flat on purpose.
        if self._freed or not (0 <= dest < self._size and 0 <= tag <= self._tag_bound):
            if dest == PROC_NULL and not self._freed:
                return
            self._engine_free_check()
            self._check_send_tag(tag)
            self._world_rank(dest, "destination")
        engine = world._engine or world.engine()
        try:
            parts = PICKLE.dumps(obj)
        except SerializationError as exc:
            raise SerializationError(f"rank {self._rank} cannot send to rank {dest}: {exc}"
                                     ) from None
        if len(parts) == 1 and engine.send_fast(self._ranks[dest], self._ctx, tag, parts[0],
                                                PICKLED):
            return
        outgoing = engine.send(self._ranks[dest], self._ctx, tag, parts, PICKLED)
        if not outgoing.done:
            engine.wait_until(lambda: outgoing.done, self._describe("send", dest, tag))

    bsend = send

    def ssend(self, obj: Any, dest: int, tag: int = 0) -> None:
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        self._send_parts(self._encode(obj, dest), dest, tag, PICKLED | SYNC, self._ctx, "ssend")

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return self._isend(obj, dest, tag, PICKLED, "isend")

    ibsend = isend

    def issend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return self._isend(obj, dest, tag, PICKLED | SYNC, "issend")

    def _isend(self, obj: Any, dest: int, tag: int, flags: int, call: str) -> Request:
        if dest == PROC_NULL:
            return Request()
        self._check_send_tag(tag)
        outgoing = self._start_send(self._encode(obj, dest), dest, tag, flags, self._ctx)
        return Request(lambda: outgoing.done, None, self._describe(call, dest, tag))

    def recv(self, buf: Any = None, source: int = ANY_SOURCE, tag: int = ANY_TAG,
             status: Status | None = None) -> Any:
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return None
        if tag != ANY_TAG and not 0 <= tag <= self._tag_bound:
            self._check_recv_tag(tag)
        if self._freed:
            self._engine_free_check()
        engine = world._engine or world.engine()
        if 0 <= source < self._size:
            world_source = self._ranks[source]
            message = engine.receive_fast(world_source, self._ctx, tag, None,
                                          engine.fast_spin_ns)
            if message is None:
                message = engine.receive(self._ctx, world_source, tag, None, _blocked_in, self,
                                         "recv", source, tag)
        else:
            message = engine.receive(self._ctx, self._source(source), tag, None, _blocked_in,
                                     self, "recv", source, tag)
        if status is not None:
            _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return self._decode(message)

    def irecv(self, buf: Any = None, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        if source == PROC_NULL:
            return Request(lambda: True, lambda s: _fill(s, PROC_NULL, ANY_TAG, 0))
        self._check_recv_tag(tag)
        receive = self._post(source, tag, self._ctx)

        def finish(status: Status | None) -> Any:
            if receive.cancelled:
                if status is not None:
                    status.cancelled = True
                return None
            if receive.error is not None:
                raise receive.error
            message = receive.message
            assert message is not None
            _fill(status, self._comm_rank(message.source), message.tag, message.length)
            return self._decode(message)

        return Request(lambda: receive.done, finish, self._describe("irecv", source, tag),
                       lambda: world.engine().cancel(receive), self._peeker(receive))

    def sendrecv(self, sendobj: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,
                 source: int = ANY_SOURCE, recvtag: int = ANY_TAG,
                 status: Status | None = None) -> Any:
        # The send never waits for the receiver (a large one is collected by it
        # later), so the receive can follow it.
        outgoing = None
        if dest != PROC_NULL:
            self._check_send_tag(sendtag)
            outgoing = self._start_send(self._encode(sendobj, dest), dest, sendtag, PICKLED,
                                        self._ctx)
        value = self.recv(None, source, recvtag, status)
        if outgoing is not None and not outgoing.done:
            world.engine().wait_until(lambda: outgoing.done,
                                      self._describe("sendrecv", dest, sendtag))
        return value

    def probe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
              status: Status | None = None) -> bool:
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return True
        message = self._probe(source, tag, take=False, block=True)
        assert message is not None
        _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return True

    def iprobe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
               status: Status | None = None) -> bool:
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return True
        message = self._probe(source, tag, take=False, block=False)
        if message is None:
            return False
        _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return True

    def mprobe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
               status: Status | None = None) -> MatchedMessage:
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return MatchedMessage(no_proc=True)
        message = self._probe(source, tag, take=True, block=True)
        assert message is not None
        _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return MatchedMessage(self, message)

    def improbe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
                status: Status | None = None) -> MatchedMessage | None:
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return MatchedMessage(no_proc=True)
        message = self._probe(source, tag, take=True, block=False)
        if message is None:
            return None
        _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return MatchedMessage(self, message)

    Probe = probe
    Iprobe = iprobe
    Mprobe = mprobe
    Improbe = improbe

    def _probe(self, source: int, tag: int, take: bool, block: bool) -> Message | None:
        self._check_recv_tag(tag)
        engine = self._engine()
        world_source = self._source(source)
        found: list[Message | None] = [None]

        def look() -> bool:
            # wait_until may ask again after a True: with ``take`` a second look would
            # match (and lose) the next message, so once found, the answer stays.
            if found[0] is None:
                found[0] = engine.probe(self._ctx, world_source, tag, take)
            return found[0] is not None

        if not look() and block:
            engine.wait_until(look, self._describe("probe", source, tag))
        return found[0]

    # -- buffer API: point to point ----------------------------------------------

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None:
        # The hot path of the buffer API: a plain contiguous buffer goes out in one call.
        if (0 <= dest < self._size and 0 <= tag <= self._tag_bound and not self._freed
                and type(buf) is not list and type(buf) is not tuple
                and (world._engine or world.engine()).send_fast(self._ranks[dest], self._ctx,
                                                                tag, buf, 0)):
            return
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        self._send_parts([buffer_view(buf, readonly=True)], dest, tag, 0, self._ctx, "Send")

    Bsend = Send
    Rsend = Send

    def Ssend(self, buf: Any, dest: int, tag: int = 0) -> None:
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        self._send_parts([buffer_view(buf, readonly=True)], dest, tag, SYNC, self._ctx,
                         "Ssend")

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        return self._Isend(buf, dest, tag, 0, "Isend")

    Ibsend = Isend
    Irsend = Isend

    def Issend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        return self._Isend(buf, dest, tag, SYNC, "Issend")

    def _Isend(self, buf: Any, dest: int, tag: int, flags: int, call: str) -> Request:
        if dest == PROC_NULL:
            return Request()
        self._check_send_tag(tag)
        view = buffer_view(buf, readonly=True)
        outgoing = self._start_send([view], dest, tag, flags, self._ctx)
        return Request(lambda: outgoing.done, None, self._describe(call, dest, tag))

    def Recv(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG,
             status: Status | None = None) -> None:
        if (0 <= source < self._size and not self._freed and type(buf) is not list
                and type(buf) is not tuple and (tag == ANY_TAG or 0 <= tag <= self._tag_bound)):
            # The hot path of the buffer API: the message goes straight into a plain
            # contiguous buffer, in one call (which spins for it a little).
            engine = world._engine or world.engine()
            message = engine.receive_fast(self._ranks[source], self._ctx, tag, buf,
                                          engine.fast_spin_ns)
            if message is not None:
                if status is not None:
                    _fill(status, source, message.tag, message.length)
                return
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return
        if tag != ANY_TAG and not 0 <= tag <= self._tag_bound:
            self._check_recv_tag(tag)
        view = buffer_view(buf, readonly=False)
        message = self._engine().receive(self._ctx, self._source(source), tag, view,
                                         _blocked_in, self, "Recv", source, tag)
        if status is not None:
            _fill(status, self._comm_rank(message.source), message.tag, message.length)

    def Irecv(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        if source == PROC_NULL:
            return Request(lambda: True, lambda s: _fill(s, PROC_NULL, ANY_TAG, 0))
        self._check_recv_tag(tag)
        view = buffer_view(buf, readonly=False)
        receive = self._post(source, tag, self._ctx, view)

        def finish(status: Status | None) -> None:
            if receive.cancelled:
                if status is not None:
                    status.cancelled = True
                return
            if receive.error is not None:
                raise receive.error
            message = receive.message
            assert message is not None
            _fill(status, self._comm_rank(message.source), message.tag, message.length)

        return Request(lambda: receive.done, finish, self._describe("Irecv", source, tag),
                       lambda: world.engine().cancel(receive), self._peeker(receive))

    def Sendrecv(self, sendbuf: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,
                 source: int = ANY_SOURCE, recvtag: int = ANY_TAG,
                 status: Status | None = None) -> None:
        outgoing = None
        if dest != PROC_NULL:
            self._check_send_tag(sendtag)
            outgoing = self._start_send([buffer_view(sendbuf, readonly=True)], dest, sendtag, 0,
                                        self._ctx)
        self.Recv(recvbuf, source, recvtag, status)
        if outgoing is not None and not outgoing.done:
            world.engine().wait_until(lambda: outgoing.done,
                                      self._describe("Sendrecv", dest, sendtag))

    def Sendrecv_replace(self, buf: Any, dest: int, sendtag: int = 0, source: int = ANY_SOURCE,
                         recvtag: int = ANY_TAG, status: Status | None = None) -> None:
        copy = bytes(parse_buffer(buf, readonly=True).view)
        request = self.Irecv(buf, source, recvtag)
        self.Isend(copy, dest, sendtag).Wait()
        request.Wait(status)

    # -- management ------------------------------------------------------------------

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

    def _engine_free_check(self) -> None:
        if self._freed:
            raise _error(C.ERR_COMM, "invalid communicator (COMM_NULL or freed)")

    def Get_group(self) -> Group:
        self._engine_free_check()
        return Group(self._ranks, world.world_rank())

    @property
    def group(self) -> Group:
        return self.Get_group()

    def Compare(self, comm: Comm) -> int:
        if self is comm or (self._ctx == comm._ctx and self._ranks == comm._ranks):
            return C.IDENT
        if self._ranks == comm._ranks:
            return C.CONGRUENT
        if sorted(self._ranks) == sorted(comm._ranks):
            return C.SIMILAR
        return C.UNEQUAL

    def _next_context(self, salt: int = 0) -> int:
        self._serial += 1
        return world.derive_context(self._ctx, self._serial, salt)

    def Dup(self, info: Any = None) -> Comm:
        self._engine_free_check()
        return type(self)(self._ranks, self._next_context(), "")

    Clone = Dup
    Dup_with_info = Dup

    def Free(self) -> None:
        if self._freed:
            raise _error(C.ERR_COMM, "this communicator is already freed (or COMM_NULL)")
        if self._ctx in (0, 2):
            raise _error(C.ERR_COMM, "COMM_WORLD and COMM_SELF cannot be freed")
        self._freed = True

    def free(self) -> None:
        if not self._freed and self._ctx not in (0, 2):
            self._freed = True

    def __bool__(self) -> bool:
        return not self._freed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Comm):
            return NotImplemented
        return (self._freed and other._freed) or (
            self._ctx == other._ctx and self._ranks == other._ranks and
            not self._freed and not other._freed)

    def __hash__(self) -> int:
        return hash((self._ctx, self._ranks))

    def Get_name(self) -> str:
        return self._name

    def Set_name(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def Is_inter(self) -> bool:
        return False

    def Is_intra(self) -> bool:
        return True

    @property
    def is_inter(self) -> bool:
        return False

    @property
    def is_intra(self) -> bool:
        return True

    def Get_topology(self) -> int:
        return UNDEFINED

    def Get_errhandler(self) -> Any:
        return self._errhandler if self._errhandler is not None else C.ERRORS_RETURN

    def Set_errhandler(self, errhandler: Any) -> None:
        # Errors always raise MPI.Exception, as mpi4py does with ERRORS_RETURN.
        self._errhandler = errhandler

    def Get_attr(self, keyval: int) -> Any:
        if keyval == C.TAG_UB:
            return TAG_UPPER_BOUND
        return None

    def Abort(self, errorcode: int = 0) -> None:
        from shoal.launch.control import report

        report("abort", code=int(errorcode), rank=world.world_rank(),
               message=f"MPI_Abort({errorcode}) called on rank {world.world_rank()}")
        os._exit(int(errorcode) & 0xFF or 1 if errorcode else 0)


def _blocked_in(comm: Comm, call: str, peer: int, tag: int) -> str:
    """What a rank waits for, as ``shoal run --timeout`` reports it."""
    who = "ANY_SOURCE" if peer == ANY_SOURCE else str(peer)
    label = "ANY_TAG" if tag == ANY_TAG else str(tag)
    return f"{call}(source/dest={who}, tag={label}) on {comm.Get_name() or 'a communicator'}"


def processor_name() -> str:
    return socket.gethostname()
