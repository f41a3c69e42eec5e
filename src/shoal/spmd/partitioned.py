"""Partitioned point-to-point communication (MPI-4): ``Comm.Psend_init`` and
``Comm.Precv_init`` make persistent requests, ``Prequest.Pready`` (``_range``, ``_list``)
marks a send's partitions ready and ``Prequest.Parrived`` asks whether a receive's
partition is in.

The buffer holds ``partitions`` equal parts: an explicit count in ``[buf, count, type]``
is per partition, as in mpi4py, and an inferred one is the buffer's entries divided by
``partitions``.  The send goes out as one message once every partition is ready; the
receive takes it whole, so its partitions arrive together (MPI lets an implementation
group them so).  Partitioned traffic travels on the communicator's collective context
with tags above any collective uses, so it never meets other messages.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import world
from shoal.spmd.buffers import parse_buffer
from shoal.spmd.matching import ANY_TAG
from shoal.spmd.request import Prequest, Request, _fill, _Op, _Result

# Collective tags stay below 2**30; the wire carries 64-bit tags.
_TAG_BASE = 1 << 40


def _partitions(partitions: Any) -> int:
    n = int(partitions)
    if n < 1:
        raise C.Exception(C.ERR_ARG, f"the number of partitions must be at least 1, not {n}")
    return n


class _Partitioned:
    """What a partitioned request keeps between its rounds."""

    kind = ""

    def __init__(self, comm: Any, buf: Any, partitions: int, peer: int, tag: int) -> None:
        self.comm, self.buf, self.partitions = comm, buf, partitions
        self.peer, self.tag = peer, tag

    def _partition(self, partition: Any, call: str) -> int:
        i = int(partition)
        if not 0 <= i < self.partitions:
            raise C.Exception(C.ERR_ARG, f"{call}: partition {i} is not in 0..."
                              f"{self.partitions - 1}")
        return i

    def ready(self, op: _Op, partitions: Any) -> None:
        raise C.Exception(C.ERR_REQUEST, "Pready needs a partitioned send request")

    def arrived(self, op: _Op, partition: Any) -> bool:
        raise C.Exception(C.ERR_REQUEST, "Parrived needs a partitioned receive request")


class _Send(_Partitioned):
    def __init__(self, comm: Any, buf: Any, partitions: int, peer: int, tag: int) -> None:
        super().__init__(comm, buf, partitions, peer, tag)
        self.marked = bytearray(partitions)
        self.missing = partitions
        self.outgoing: Any = None
        self.sent = False

    def start(self) -> Request:
        self.marked = bytearray(self.partitions)
        self.missing = self.partitions
        self.outgoing, self.sent = None, False
        describe = self.comm._describe("Psend_init", self.peer, self.tag)
        return Request._make(self._done, None, describe)

    def _done(self) -> bool:
        return self.sent and (self.outgoing is None or self.outgoing.done)

    def ready(self, op: _Op, partitions: Any) -> None:
        if not op.active:
            raise C.Exception(C.ERR_REQUEST, "Pready needs a started partitioned send: "
                              "Start it first")
        for partition in partitions:
            i = self._partition(partition, "Pready")
            if not self.marked[i]:
                self.marked[i] = 1
                self.missing -= 1
        if self.missing == 0 and not self.sent:
            self.sent = True
            if self.peer != C.PROC_NULL:
                view = parse_buffer(self.buf, readonly=True, blocks=self.partitions).view
                comm = self.comm
                self.outgoing = comm._start_send([view], self.peer, _TAG_BASE + self.tag, 0,
                                                 comm._cctx)


class _Receive(_Partitioned):
    def __init__(self, comm: Any, buf: Any, partitions: int, peer: int, tag: int) -> None:
        super().__init__(comm, buf, partitions, peer, tag)
        self.receive: Any = None

    def start(self) -> Request:
        comm = self.comm
        if self.peer == C.PROC_NULL:
            self.receive = None
            return Request._make(lambda: True, _proc_null)
        spec = parse_buffer(self.buf, readonly=False, blocks=self.partitions)
        receive = self.receive = comm._post(self.peer, _TAG_BASE + self.tag, comm._cctx,
                                            spec.view)

        def finish(status: _Result) -> None:
            if receive.cancelled:
                status.cancelled = True
                return
            if receive.error is not None:
                raise receive.error
            message = receive.message
            spec.commit()
            _fill(status, comm._comm_rank(message.source), message.tag - _TAG_BASE,
                  message.length)

        return Request._make(lambda: receive.done, finish,
                             comm._describe("Precv_init", self.peer, self.tag),
                             lambda: world.engine().cancel(receive))

    def arrived(self, op: _Op, partition: Any) -> bool:
        self._partition(partition, "Parrived")
        receive = self.receive
        if not op.active or receive is None:
            return True  # an inactive request (or one from PROC_NULL) has nothing to wait for
        if not receive.done:
            engine = world.engine()
            engine.progress()
            if not receive.done:
                engine.idle()
        return bool(receive.done)


def _proc_null(status: _Result) -> None:
    _fill(status, C.PROC_NULL, ANY_TAG, 0)


def psend_init(comm: Any, buf: Any, partitions: Any, dest: int, tag: int) -> Prequest:
    comm._check_dest(dest)
    n = _partitions(partitions)
    if dest != C.PROC_NULL:
        comm._check_send_tag(tag)
        parse_buffer(buf, readonly=True, blocks=n)  # its mistakes show here
    return _request(_Send(comm, buf, n, dest, tag))


def precv_init(comm: Any, buf: Any, partitions: Any, source: int, tag: int) -> Prequest:
    comm._check_source(source)
    n = _partitions(partitions)
    if source != C.PROC_NULL:
        if tag == ANY_TAG:
            raise C.Exception(C.ERR_TAG, "a partitioned receive takes no wildcard tag "
                              "(MPI.ANY_TAG)")
        comm._check_recv_tag(tag)
        parse_buffer(buf, readonly=False, blocks=n)
    return _request(_Receive(comm, buf, n, source, tag))


def _request(state: _Send | _Receive) -> Prequest:
    request = Prequest._persistent(state.start)
    request._op.part = state
    return request
