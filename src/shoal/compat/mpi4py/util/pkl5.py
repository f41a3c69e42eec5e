"""``mpi4py.util.pkl5`` on shoal: object messages pickled with protocol 5, buffers out of band.

mpi4py's pkl5 exists because MPI counts are C ``int``s and pickles travel in band: it
splits a message into a header, the pickle and each out-of-band buffer, sent as
separate MPI messages.  shoal's object messages already travel that way (protocol 5,
buffers out of band, no size limit), so here each pkl5 message is *one* shoal object
message: ``(pickle, buffers)`` made by :data:`pickle` (this module's ``MPI.Pickle``, as
in mpi4py: set its ``PROTOCOL``, ``THRESHOLD`` or dumps/loads to change how pkl5
pickles) with the buffers wrapped in :class:`pickle.PickleBuffer`, so shoal sends them
out of band and the receiver unpickles them as views of what arrived.

The API is mpi4py's: :class:`Comm` / :class:`Intracomm` / :class:`Intercomm` made from any
communicator, with ``send``/``bsend``/``ssend``/``isend``/``ibsend``/``issend``/``recv``/
``sendrecv``/``mprobe``/``improbe`` and the object collectives; :class:`Request` and
:class:`Message` are tuples of the underlying handles, as in mpi4py.  ``irecv`` raises
``RuntimeError`` (unsupported, as in mpi4py: use ``mprobe(...).irecv()``).  As in mpi4py,
a pkl5 message is only for a pkl5 receive.
"""

from __future__ import annotations

import pickle as _stdlib_pickle
import struct as _struct
from collections.abc import Sequence
from typing import Any

from shoal.spmd import mpi as _mpi

# Typed loosely: names appear here as shoal's MPI namespace gains them (mpi4py's API).
MPI: Any = _mpi

ANY_SOURCE = MPI.ANY_SOURCE
ANY_TAG = MPI.ANY_TAG
PROC_NULL = MPI.PROC_NULL
ROOT = MPI.ROOT
Pickle = MPI.Pickle
Status = MPI.Status

pickle = Pickle()


class _BigMPI:
    """mpi4py's splitting of messages over ``blocksize`` bytes into derived datatypes.

    shoal's messages carry any length in one piece, so pkl5 never splits; the class
    stays because mpi4py's tests (and programs that tune it) set ``pkl5._bigmpi``.
    """

    blocksize = (1 << (_struct.calcsize("q") * 8 - 1)) - 1

    def __init__(self) -> None:
        self.cache: dict[int, Any] = {}

    def __enter__(self) -> _BigMPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cache.clear()

    def __call__(self, buf: Any) -> tuple[memoryview, int, Any]:
        view = memoryview(buf)
        return (view, view.nbytes, MPI.BYTE)


_bigmpi = _BigMPI()


class _Payload:
    """One pkl5 message in flight: the pickle and its out-of-band buffers.

    It pickles its buffers as :class:`pickle.PickleBuffer`, so shoal sends them out of
    band, and it stays picklable after arriving (when a collective passes it on) even
    though its buffers are then views of the received bytes.
    """

    __slots__ = ("bufs", "data")

    def __init__(self, data: Any, bufs: list[Any]) -> None:
        self.data = data
        self.bufs = bufs

    def __reduce_ex__(self, protocol: Any) -> Any:
        if isinstance(protocol, int) and protocol >= 5:
            return (_Payload._rebuild,
                    (self.data, *(_stdlib_pickle.PickleBuffer(b) for b in self.bufs)))
        return (_Payload._rebuild, (self.data, *(bytes(b) for b in self.bufs)))

    @staticmethod
    def _rebuild(data: Any, *bufs: Any) -> _Payload:
        return _Payload(data, list(bufs))


def _dumps(obj: Any) -> _Payload:
    """``obj`` pickled by :data:`pickle` (mpi4py's ``pickle.dumps_oob``)."""
    dumps_oob = getattr(pickle, "dumps_oob", None)
    if dumps_oob is not None:
        data, bufs = dumps_oob(obj)
    else:  # an MPI.Pickle without mpi4py's dumps_oob: protocol 5, every buffer out of band
        found: list[_stdlib_pickle.PickleBuffer] = []
        dumps = getattr(pickle, "dumps_function", _stdlib_pickle.dumps)
        protocol = getattr(pickle, "PROTOCOL", None) or _stdlib_pickle.HIGHEST_PROTOCOL
        if protocol >= 5:
            data = dumps(obj, protocol, buffer_callback=found.append)
        else:
            data = dumps(obj, protocol)
        bufs = [buffer.raw() for buffer in found]
    return _Payload(bytes(data), list(bufs))


def _loads(payload: Any) -> Any:
    if payload is None:  # a receive from PROC_NULL
        return None
    loads_oob = getattr(pickle, "loads_oob", None)
    if loads_oob is not None:
        return loads_oob(payload.data, list(payload.bufs))
    loads = getattr(pickle, "loads_function", _stdlib_pickle.loads)
    return loads(payload.data, buffers=list(payload.bufs))


def _payloads(objs: Any, size: int) -> list[Any]:
    items = [None] * size if objs is None else list(objs)
    if len(items) != size:
        raise ValueError(f"expecting {size} items, got {len(items)}")
    return [_dumps(item) for item in items]


class Request(tuple):
    """Request: a tuple of MPI requests; a receive's ``wait``/``test`` give the object."""

    _decode = False

    def __new__(cls, request: Any = None) -> Request:
        if request is None:
            request = (MPI.REQUEST_NULL,)
        if isinstance(request, MPI.Request):
            request = (request,)
        made: Request = super().__new__(cls, request)
        if isinstance(request, Request):
            made._decode = request._decode
        return made

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Request):
            return tuple(self) == tuple(other)
        if isinstance(other, MPI.Request):
            return all(req == other for req in self)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Request):
            return tuple(self) != tuple(other)
        if isinstance(other, MPI.Request):
            return any(req != other for req in self)
        return NotImplemented

    def __bool__(self) -> bool:
        return any(bool(req) for req in self)

    def Free(self) -> None:
        for req in self:
            req.Free()

    def free(self) -> None:
        for req in self:
            req.free()

    def cancel(self) -> None:
        for req in self:
            req.Cancel()

    def get_status(self, status: Any = None) -> bool:
        statuses = [status] + [None] * max(len(self) - 1, 0)
        return all(req.Get_status(st) for req, st in zip(self, statuses, strict=True))

    def _result(self, values: list[Any]) -> Any:
        return _loads(values[0]) if self._decode else None

    def test(self, status: Any = None) -> tuple[bool, Any]:
        done, values = _testall([self], MPI.Request.testall,
                                None if status is None else [status])
        return done, (values[0] if done else None)

    def wait(self, status: Any = None) -> Any:
        return _testall([self], _waitall, None if status is None else [status])[1][0]

    @classmethod
    def get_status_all(cls, requests: Sequence[Request], statuses: Any = None) -> bool:
        if statuses is None:
            return all(req.get_status() for req in requests)
        statuses += [Status() for _ in range(len(statuses), len(requests))]
        return all(req.get_status(st) for req, st in zip(requests, statuses, strict=False))

    @classmethod
    def testall(cls, requests: Sequence[Request], statuses: Any = None) -> tuple[bool, Any]:
        return _testall(requests, MPI.Request.testall, statuses)

    @classmethod
    def waitall(cls, requests: Sequence[Request], statuses: Any = None) -> Any:
        return _testall(requests, _waitall, statuses)[1]


def _waitall(requests: list[Any], statuses: Any = None) -> tuple[bool, list[Any]]:
    return True, MPI.Request.waitall(requests, statuses)


def _testall(requests: Sequence[Request], testall: Any,
             statuses: Any) -> tuple[bool, Any]:
    """Test or wait for every handle of every request; objects decoded per request."""
    if isinstance(statuses, list):
        statuses.extend(Status() for _ in range(len(statuses), len(requests)))
    handles: list[Any] = []
    for request in requests:
        handles.extend(request)
    spread: list[Any] | None = None
    if statuses is not None:  # as many as given: statuses[i] for every handle of request i
        spread = []
        for request, status in zip(requests, statuses, strict=False):
            spread.extend([status] * len(request))
    done, values = testall(handles, spread)
    if not done:
        return False, None
    objs: list[Any] = []
    position = 0
    for request in requests:
        objs.append(request._result(values[position:position + len(request)]))
        position += len(request)
    return True, objs


class Message(tuple):
    """Message: a tuple of matched MPI messages, received as one object."""

    def __new__(cls, message: Any = None) -> Message:
        if message is None:
            message = (MPI.MESSAGE_NULL,)
        if isinstance(message, MPI.Message):
            message = (message,)
        return super().__new__(cls, message)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return tuple(self) == tuple(other)
        if isinstance(other, MPI.Message):
            return all(msg == other for msg in self)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Message):
            return tuple(self) != tuple(other)
        if isinstance(other, MPI.Message):
            return any(msg != other for msg in self)
        return NotImplemented

    def __bool__(self) -> bool:
        return any(bool(msg) for msg in self)

    def free(self) -> None:
        for msg in self:
            msg.free()

    def recv(self, status: Any = None) -> Any:
        return _loads(self[0].recv(status))

    def irecv(self) -> Request:
        request = Request(self[0].irecv())
        request._decode = True
        return request

    @classmethod
    def probe(cls, comm: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG,
              status: Any = None) -> Message:
        return cls(MPI.Comm.mprobe(comm, source, tag, status))

    @classmethod
    def iprobe(cls, comm: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG,
               status: Any = None) -> Message | None:
        found = MPI.Comm.improbe(comm, source, tag, status)
        return None if found is None else cls(found)


def _plain_class(cls: type) -> Any:
    """The first of ``cls``'s bases that is a plain (not pkl5) MPI communicator class."""
    return next(c for c in cls.__mro__ if not issubclass(c, Comm) and issubclass(c, MPI.Comm))


class Comm(MPI.Comm):
    """Communicator whose object methods use pkl5's messages.

    The object methods run on ``_base``, a plain communicator handle on the same
    communicator (so that a base method calling another, ``sendrecv`` calling
    ``recv`` say, does not come back here); everything else is inherited.
    """

    def __new__(cls, comm: Any = None) -> Comm:
        if isinstance(comm, Comm):
            comm = comm._base
        made: Comm = super().__new__(cls, comm)  # mpi4py's Comm(comm): the same communicator
        return made

    def __init__(self, comm: Any = None) -> None:
        pass  # the handle was made by __new__

    @property
    def _base(self) -> Any:
        """A plain handle on this communicator, remade when the handle is (Free, a base
        method that made a communicator of this class)."""
        base = self.__dict__.get("_plain")
        if base is None or base._info is not self._info:
            base = _plain_class(type(self))._wrap(self._info)
            base._load()
            self.__dict__["_plain"] = base
        return base

    def Dup(self, *args: Any, **kwargs: Any) -> Comm:
        return type(self)(self._base.Dup(*args, **kwargs))

    # -- point to point ---------------------------------------------------------

    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        self._base.send(_dumps(obj), dest, tag)

    def bsend(self, obj: Any, dest: int, tag: int = 0) -> None:
        self._base.bsend(_dumps(obj), dest, tag)

    def ssend(self, obj: Any, dest: int, tag: int = 0) -> None:
        self._base.ssend(_dumps(obj), dest, tag)

    def isend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return Request(self._base.isend(_dumps(obj), dest, tag))

    def ibsend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return Request(self._base.ibsend(_dumps(obj), dest, tag))

    def issend(self, obj: Any, dest: int, tag: int = 0) -> Request:
        return Request(self._base.issend(_dumps(obj), dest, tag))

    def recv(self, buf: Any = None, source: int = ANY_SOURCE, tag: int = ANY_TAG,
             status: Any = None) -> Any:
        return _loads(self._base.recv(None, source, tag, status))

    def irecv(self, buf: Any = None, source: int = ANY_SOURCE,
              tag: int = ANY_TAG) -> Request:
        raise RuntimeError("unsupported")

    def sendrecv(self, sendobj: Any, dest: int, sendtag: int = 0, recvbuf: Any = None,
                 source: int = ANY_SOURCE, recvtag: int = ANY_TAG,
                 status: Any = None) -> Any:
        return _loads(self._base.sendrecv(_dumps(sendobj), dest, sendtag, None, source,
                                       recvtag, status))

    def mprobe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
               status: Any = None) -> Message:
        return Message(self._base.mprobe(source, tag, status))

    def improbe(self, source: int = ANY_SOURCE, tag: int = ANY_TAG,
                status: Any = None) -> Message | None:
        found = self._base.improbe(source, tag, status)
        return None if found is None else Message(found)

    # -- collectives ------------------------------------------------------------

    def _peers(self) -> int:
        return int(self.Get_remote_size() if self.Is_inter() else self.Get_size())

    def bcast(self, obj: Any, root: int = 0) -> Any:
        sending = (root == ROOT) if self.Is_inter() else (root == self.Get_rank())
        return _loads(self._base.bcast(_dumps(obj) if sending else None, root))

    def gather(self, sendobj: Any, root: int = 0) -> Any:
        got = self._base.gather(None if root in (ROOT, PROC_NULL) and self.Is_inter()
                             else _dumps(sendobj), root)
        return None if got is None else [_loads(item) for item in got]

    def scatter(self, sendobj: Any, root: int = 0) -> Any:
        sending = (root == ROOT) if self.Is_inter() else (root == self.Get_rank())
        items = _payloads(sendobj, self._peers()) if sending else None
        return _loads(self._base.scatter(items, root))

    def allgather(self, sendobj: Any) -> list[Any]:
        return [_loads(item) for item in self._base.allgather(_dumps(sendobj))]

    def alltoall(self, sendobj: Any) -> list[Any]:
        items = _payloads(sendobj, self._peers())
        return [_loads(item) for item in self._base.alltoall(items)]


class Intracomm(Comm, MPI.Intracomm):
    """Intracommunicator whose object methods use pkl5's messages."""


if hasattr(MPI, "Intercomm"):
    class Intercomm(Comm, MPI.Intercomm):
        """Intercommunicator whose object methods use pkl5's messages."""

