"""Point-to-point communication: objects (``send``/``recv`` ...) and buffers (``Send`` ...).

The hot paths (``send``, ``recv``, ``Send``, ``Recv``) are written out flat on
purpose: a check of the arguments, one engine call.  Everything else is made
of the verbs in :mod:`.commbase`.  Buffered sends (``bsend``, ``Bsend`` ...)
go through the attached buffer (see :mod:`.bsend`), persistent requests
(``Send_init`` ...) start the matching nonblocking call on each ``Start``.
"""

from __future__ import annotations

import warnings
from pickle import dumps as _dumps
from pickle import loads as _loads
from typing import Any

from shoal.errors import SerializationError
from shoal.spmd import world
from shoal.spmd.buffers import buffer_view, list_view, parse_buffer
from shoal.spmd.commbase import PROC_NULL, CommBase, _blocked_in, as_rank
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG, Message
from shoal.spmd.message import Message as MatchedMessage
from shoal.spmd.objcodec import PICKLE
from shoal.spmd.objpath import NOT_TAKEN, Taken
from shoal.spmd.request import (
    Prequest,
    Request,
    Status,
    _fill,
    _Result,
    proc_null_request,
)
from shoal.wire.header import PICKLED, SYNC, WAITS

_PLAIN = frozenset({bytes, str, int, float, bool, type(None)})

_LIST_SPECS = (list, tuple)


def _warn_buf() -> None:
    warnings.warn("the 'buf' argument is deprecated", UserWarning, stacklevel=3)


class PointToPoint(CommBase):
    """mpi4py's point-to-point methods."""

    # -- object API --------------------------------------------------------------

    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        # A plain value in one step (see shoal.spmd.objpath); then the general path,
        # written out flat on purpose.
        path = self._path
        if path is not None and path.send(obj, dest, tag):
            return
        if self._freed or not (0 <= dest < self._size and 0 <= tag <= self._tag_bound):
            if dest == PROC_NULL and not self._freed:
                return
            self._engine_free_check()
            self._check_send_tag(tag)
            self._world_rank(dest, "destination")
        try:
            target = self._ranks[dest]
        except TypeError:  # a rank given as a float: truncated, as mpi4py does
            return self.send(obj, as_rank(dest, "destination"), tag)
        engine = world._engine or world.engine()
        codec = PICKLE
        try:
            if codec._oob:  # the standard pickle: what PICKLE.encode does, inlined
                buffers: list[Any] = []
                try:
                    # Nothing in a plain value can go out of band: the same bytes without
                    # the callback, some 60-90 ns sooner.
                    head = (_dumps(obj, codec._protocol) if type(obj) in _PLAIN else
                            _dumps(obj, codec._protocol, buffer_callback=buffers.append))
                except Exception as exc:  # pickling raises many types
                    raise codec.unpicklable(obj, exc) from None
                if not buffers:
                    if engine.send_fast(target, self._ctx, tag, head, PICKLED):
                        return
                    parts = [head]
                else:
                    parts = codec.with_buffers(obj, head, buffers)
            else:
                parts = codec.encode(obj)
        except SerializationError as exc:
            raise SerializationError(f"rank {self._rank} cannot send to rank {dest}: {exc}"
                                     ) from None
        if len(parts) == 1 and engine.send_fast(target, self._ctx, tag, parts[0], PICKLED):
            return
        outgoing = engine.send(target, self._ctx, tag, parts, PICKLED | WAITS)
        if not outgoing.done:
            engine.wait_until(lambda: outgoing.done, self._describe("send", dest, tag))

    def ssend(self, obj: Any, dest: int, tag: int = 0) -> None:
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        self._send_parts(self._encode(obj, dest), dest, tag, PICKLED | SYNC, self._ctx, "ssend")

    def bsend(self, obj: Any, dest: int, tag: int = 0) -> None:
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        from shoal.spmd.bsend import buffered_send

        buffered_send(self, self._encode(obj, dest), dest, tag, PICKLED)

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return self._isend(obj, dest, tag, PICKLED, "isend")

    def issend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return self._isend(obj, dest, tag, PICKLED | SYNC, "issend")

    def ibsend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        if dest == PROC_NULL:
            return proc_null_request(receive=False)
        self._check_send_tag(tag)
        from shoal.spmd.bsend import buffered_send

        buffered_send(self, self._encode(obj, dest), dest, tag, PICKLED)
        return _buffered_request(dest, tag)

    def _isend(self, obj: Any, dest: int, tag: int, flags: int, call: str) -> Request:
        if dest == PROC_NULL:
            return proc_null_request(receive=False)
        self._check_send_tag(tag)
        outgoing = self._start_send(self._encode(obj, dest), dest, tag, flags, self._ctx)
        return Request._make(lambda: outgoing.done, None, self._describe(call, dest, tag))

    def recv(self, buf: Any = None, source: int = ANY_SOURCE, tag: int = ANY_TAG,
             status: Status | None = None) -> Any:
        path = self._path
        if path is not None and buf is None and status is None:  # see shoal.spmd.objpath
            got = path.recv(source, tag)
            if got is not NOT_TAKEN:
                return self._decode(got.message) if type(got) is Taken else got
        if buf is not None:
            _warn_buf()
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return None
        if tag != ANY_TAG and not 0 <= tag <= self._tag_bound:
            self._check_recv_tag(tag)
        if self._freed:
            self._engine_free_check()
        engine = world._engine or world.engine()
        if 0 <= source < self._size:
            try:
                world_source = self._ranks[source]
            except TypeError:  # a rank given as a float: truncated, as mpi4py does
                return self.recv(None, as_rank(source, "source"), tag, status)
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
        if not message.length:
            return None
        if message.nparts == 1 and PICKLE._loads is _loads:
            try:  # what PICKLE.decode does, inlined
                return _loads(message.body)
            except Exception:  # the codec below raises the MPI error that says why
                pass
        return self._decode(message)

    def irecv(self, buf: Any = None, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        if buf is not None:
            _warn_buf()
        if source == PROC_NULL:
            return proc_null_request()
        self._check_recv_tag(tag)
        receive = self._post(source, tag, self._ctx)

        def finish(status: _Result) -> Any:
            if receive.cancelled:
                status.cancelled = True
                return None
            if receive.error is not None:
                raise receive.error
            message = receive.message
            assert message is not None
            _fill(status, self._comm_rank(message.source), message.tag, message.length)
            return self._decode(message) if message.length else None

        return Request._make(lambda: receive.done, finish, self._describe("irecv", source, tag),
                             lambda: world.engine().cancel(receive), self._peeker(receive))

    def sendrecv(self, sendobj: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,
                 source: int = ANY_SOURCE, recvtag: int = ANY_TAG,
                 status: Status | None = None) -> Any:
        if recvbuf is not None:
            _warn_buf()
        # Check the receive before the send starts: a failing call sends nothing.
        self._check_source(source)
        self._check_recv_tag(recvtag)
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

    # -- probes -------------------------------------------------------------------------

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
            return MatchedMessage._make(no_proc=True)
        message = self._probe(source, tag, take=True, block=True)
        assert message is not None
        _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return MatchedMessage._make(self, message)

    def improbe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
                status: Status | None = None) -> MatchedMessage | None:
        if source == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return MatchedMessage._make(no_proc=True)
        message = self._probe(source, tag, take=True, block=False)
        if message is None:
            return None
        _fill(status, self._comm_rank(message.source), message.tag, message.length)
        return MatchedMessage._make(self, message)

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
            # The engine may call this again after it said True: a message taken out of
            # matching (mprobe) must not be dropped by a second look.
            if found[0] is None:
                found[0] = engine.probe(self._ctx, world_source, tag, take)
            return found[0] is not None

        if not look() and block:
            engine.wait_until(look, self._describe("probe", source, tag))
        return found[0]

    # -- buffer API -------------------------------------------------------------------

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None:
        # The hot path of the buffer API: a plain contiguous buffer, or the bytes of a
        # common [buf, count, datatype] list, goes out in one call.
        if 0 <= dest < self._size and 0 <= tag <= self._tag_bound and not self._freed:
            data = buf
            if type(buf) is list or type(buf) is tuple:
                data = list_view(buf, True)
            if data is not None:
                try:
                    target = self._ranks[dest]
                except TypeError:  # a rank given as a float: truncated, as mpi4py does
                    return self.Send(buf, as_rank(dest, "destination"), tag)
                if (world._engine or world.engine()).send_fast(target, self._ctx, tag, data,
                                                               0):
                    return
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        self._send_parts([buffer_view(buf, readonly=True)], dest, tag, 0, self._ctx, "Send")

    Rsend = Send

    def Ssend(self, buf: Any, dest: int, tag: int = 0) -> None:
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        self._send_parts([buffer_view(buf, readonly=True)], dest, tag, SYNC, self._ctx,
                         "Ssend")

    def Bsend(self, buf: Any, dest: int, tag: int = 0) -> None:
        if dest == PROC_NULL:
            return
        self._check_send_tag(tag)
        from shoal.spmd.bsend import buffered_send

        buffered_send(self, [buffer_view(buf, readonly=True)], dest, tag, 0)

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        return self._Isend(buf, dest, tag, 0, "Isend")

    Irsend = Isend

    def Issend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        return self._Isend(buf, dest, tag, SYNC, "Issend")

    def Ibsend(self, buf: Any, dest: int, tag: int = 0) -> Request:
        if dest == PROC_NULL:
            return proc_null_request(receive=False)
        view = buffer_view(buf, readonly=True)
        self._check_send_tag(tag)
        from shoal.spmd.bsend import buffered_send

        buffered_send(self, [view], dest, tag, 0)
        return _buffered_request(dest, tag)

    def _Isend(self, buf: Any, dest: int, tag: int, flags: int, call: str) -> Request:
        if dest == PROC_NULL:
            return proc_null_request(receive=False)
        view = buffer_view(buf, readonly=True)
        self._check_send_tag(tag)
        outgoing = self._start_send([view], dest, tag, flags, self._ctx)
        return Request._make(lambda: outgoing.done, None, self._describe(call, dest, tag))

    def Recv(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG,
             status: Status | None = None) -> None:
        if (0 <= source < self._size and not self._freed
                and (tag == ANY_TAG or 0 <= tag <= self._tag_bound)):
            # The hot path of the buffer API: the message goes straight into a plain
            # contiguous buffer (or the bytes of a common [buf, count, datatype] list),
            # in one call (which spins for it a little).
            into = buf
            if type(buf) is list or type(buf) is tuple:
                into = list_view(buf, False)
            if into is not None:
                engine = world._engine or world.engine()
                try:
                    world_source = self._ranks[source]
                except TypeError:  # a rank given as a float: truncated, as mpi4py does
                    return self.Recv(buf, as_rank(source, "source"), tag, status)
                message = engine.receive_fast(world_source, self._ctx, tag, into,
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
        spec = None
        if type(buf) in _LIST_SPECS:
            spec = parse_buffer(buf, readonly=False)
            view = spec.view
        else:
            view = buffer_view(buf, readonly=False)
        message = self._engine().receive(self._ctx, self._source(source), tag, view,
                                         _blocked_in, self, "Recv", source, tag)
        if spec is not None and spec.stage is not None:
            spec.commit()
        if status is not None:
            _fill(status, self._comm_rank(message.source), message.tag, message.length)

    def Irecv(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Request:
        if source == PROC_NULL:
            return proc_null_request()
        self._check_recv_tag(tag)
        spec = parse_buffer(buf, readonly=False)
        view = spec.view
        receive = self._post(source, tag, self._ctx, view)

        def finish(status: _Result) -> None:
            if receive.cancelled:
                status.cancelled = True
                return
            if receive.error is not None:
                raise receive.error
            message = receive.message
            assert message is not None
            if spec.stage is not None:
                spec.commit()
            _fill(status, self._comm_rank(message.source), message.tag, message.length)

        return Request._make(lambda: receive.done, finish, self._describe("Irecv", source, tag),
                             lambda: world.engine().cancel(receive), self._peeker(receive))

    def Sendrecv(self, sendbuf: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,
                 source: int = ANY_SOURCE, recvtag: int = ANY_TAG,
                 status: Status | None = None) -> None:
        # Everything the receive needs is checked before the send starts.
        self._check_source(source)
        self._check_recv_tag(recvtag)
        spec = parse_buffer(recvbuf, readonly=False) if source != PROC_NULL else None
        outgoing = None
        if dest != PROC_NULL:
            self._check_send_tag(sendtag)
            self._check_dest(dest)
            outgoing = self._start_send([buffer_view(sendbuf, readonly=True)], dest, sendtag,
                                        0, self._ctx)
        try:
            if spec is None:
                _fill(status, PROC_NULL, ANY_TAG, 0)
            else:
                message = self._engine().receive(self._ctx, self._source(source), recvtag,
                                                 spec.view, _blocked_in, self, "Sendrecv",
                                                 source, recvtag)
                spec.commit()
                if status is not None:
                    _fill(status, self._comm_rank(message.source), message.tag,
                          message.length)
        finally:
            if outgoing is not None and not outgoing.done:
                world.engine().wait_until(lambda: outgoing.done,
                                          self._describe("Sendrecv", dest, sendtag))

    def Sendrecv_replace(self, buf: Any, dest: int, sendtag: int = 0, source: int = ANY_SOURCE,
                         recvtag: int = ANY_TAG, status: Status | None = None) -> None:
        self._check_source(source)
        self._check_recv_tag(recvtag)
        if source == PROC_NULL and dest == PROC_NULL:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            return
        spec = parse_buffer(buf, readonly=False)
        copy = bytes(spec.view)
        request = self.Irecv_spec(spec, source, recvtag)
        try:
            self.Isend(copy, dest, sendtag).Wait()
        finally:
            request.Wait(status)

    def Irecv_spec(self, spec: Any, source: int, tag: int) -> Request:
        """``Irecv`` into an already parsed buffer spec (unpacked at completion)."""
        if source == PROC_NULL:
            return proc_null_request()
        receive = self._post(source, tag, self._ctx, spec.view)

        def finish(status: _Result) -> None:
            if receive.cancelled:
                status.cancelled = True
                return
            if receive.error is not None:
                raise receive.error
            message = receive.message
            assert message is not None
            spec.commit()
            _fill(status, self._comm_rank(message.source), message.tag, message.length)

        return Request._make(lambda: receive.done, finish,
                             self._describe("Irecv", source, tag),
                             lambda: world.engine().cancel(receive), self._peeker(receive))

    def Isendrecv(self, sendbuf: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,
                  source: int = ANY_SOURCE, recvtag: int = ANY_TAG) -> Request:
        self._check_source(source)
        self._check_recv_tag(recvtag)
        spec = parse_buffer(recvbuf, readonly=False) if source != PROC_NULL else None
        receive = self.Irecv_spec(spec, source, recvtag) if spec is not None \
            else proc_null_request()
        send = self.Isend(sendbuf, dest, sendtag)
        return _pair(send, receive, self._describe("Isendrecv", source, recvtag))

    def Isendrecv_replace(self, buf: Any, dest: int, sendtag: int = 0,
                          source: int = ANY_SOURCE, recvtag: int = ANY_TAG) -> Request:
        self._check_source(source)
        self._check_recv_tag(recvtag)
        if source == PROC_NULL and dest == PROC_NULL:
            return _pair(proc_null_request(), proc_null_request(),
                         self._describe("Isendrecv_replace", source, recvtag))
        spec = parse_buffer(buf, readonly=False)
        copy = bytes(spec.view)
        receive = self.Irecv_spec(spec, source, recvtag)
        send = self.Isend(copy, dest, sendtag)
        return _pair(send, receive, self._describe("Isendrecv_replace", source, recvtag))

    # -- persistent requests -------------------------------------------------------------

    def Send_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        self._check_dest(dest)
        return Prequest._persistent(lambda: self.Isend(buf, dest, tag))

    def Ssend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        self._check_dest(dest)
        return Prequest._persistent(lambda: self.Issend(buf, dest, tag))

    def Bsend_init(self, buf: Any, dest: int, tag: int = 0) -> Prequest:
        self._check_dest(dest)
        return Prequest._persistent(lambda: self.Ibsend(buf, dest, tag))

    Rsend_init = Send_init

    def Recv_init(self, buf: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG) -> Prequest:
        self._check_source(source)
        self._check_recv_tag(tag)
        return Prequest._persistent(lambda: self.Irecv(buf, source, tag))

    def Psend_init(self, buf: Any, partitions: int, dest: int, tag: int = 0,
                   info: Any = None) -> Prequest:
        from shoal.spmd.partitioned import psend_init

        return psend_init(self, buf, partitions, dest, tag)

    def Precv_init(self, buf: Any, partitions: int, source: int = ANY_SOURCE,
                   tag: int = ANY_TAG, info: Any = None) -> Prequest:
        from shoal.spmd.partitioned import precv_init

        return precv_init(self, buf, partitions, source, tag)


def _pair(send: Request, receive: Request, describe: Any) -> Request:
    """One request for a send and a receive: done when both are; the receive's status."""

    def done() -> bool:
        return send._ready() and receive._ready()

    def finish(status: _Result) -> None:
        send._complete(None)
        inner = Status()
        receive._complete(inner)
        _fill(status, inner.source, inner.tag, inner.count, inner.cancelled)

    return Request._make(done, finish, describe)


def _buffered_request(dest: int, tag: int) -> Request:
    """The request of a buffered send: complete as soon as the data is in the buffer."""
    return Request._make(_always, None)


def _always() -> bool:
    return True


__all__ = ["PointToPoint"]
