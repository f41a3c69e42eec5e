"""``MPI.Message``: a message taken out of matching by ``Comm.mprobe``/``improbe``, to be
received once; ``MESSAGE_NULL`` and ``MESSAGE_NO_PROC``."""

from __future__ import annotations

from typing import Any

from shoal.spmd.constants import ERR_REQUEST
from shoal.spmd.constants import Exception as MPIException
from shoal.spmd.handles import Record
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG
from shoal.spmd.request import PROC_NULL, Request, _always
from shoal.spmd.status import Status, _fill


class Message:
    """A message taken out of matching by ``mprobe``/``improbe``, to be received once."""

    __slots__ = ("_comm", "_message", "_no_proc", "__weakref__")
    __module__ = "shoal.MPI"

    _comm: Any
    _message: Any
    _no_proc: bool

    def __new__(cls, message: Message | None = None) -> Message:
        obj = object.__new__(cls)
        obj._comm, obj._message, obj._no_proc = None, None, False
        if message is not None:
            if not isinstance(message, Message):
                raise TypeError(f"expected Message or None, got {type(message).__name__}")
            obj._comm, obj._message, obj._no_proc = (message._comm, message._message,
                                                     message._no_proc)
        return obj

    @classmethod
    def _make(cls, comm: Any = None, message: Any = None, no_proc: bool = False) -> Message:
        obj = object.__new__(cls)
        obj._comm, obj._message, obj._no_proc = comm, message, no_proc
        return obj

    def __bool__(self) -> bool:
        return self._message is not None or self._no_proc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        if self._message is not None or other._message is not None:
            return self._message is other._message
        return self._no_proc == other._no_proc

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> str | tuple[Any, ...]:
        import copyreg

        if self._message is None:
            constant = MESSAGE_NO_PROC if self._no_proc else MESSAGE_NULL
            if self is constant:
                return "MESSAGE_NO_PROC" if self._no_proc else "MESSAGE_NULL"
            return (copyreg.__newobj__, (type(self), constant))  # type: ignore
        cls = type(self)
        raise ValueError(f"cannot serialize '{cls.__module__}.{cls.__name__}' instance")

    @property
    def handle(self) -> int:
        if self._message is None:
            return int((_NO_PROC_RECORD if self._no_proc else _MESSAGE_NULL_RECORD).handle)
        return id(self._message)

    @classmethod
    def fromhandle(cls, handle: int) -> Message:
        if handle == _NO_PROC_RECORD.handle:
            return cls._make(no_proc=True)
        if handle == _MESSAGE_NULL_RECORD.handle:
            return cls._make()
        raise ValueError(f"handle {handle} is not a null Message handle")

    def toint(self) -> int:
        return self.handle

    @classmethod
    def fromint(cls, arg: int, /) -> Message:
        return cls.fromhandle(arg)

    def py2f(self) -> int:
        return self.handle

    @classmethod
    def f2py(cls, arg: int) -> Message:
        return cls.fromhandle(arg)

    def free(self) -> None:
        """A copy of ``MESSAGE_NO_PROC`` becomes null; a matched message stays until it
        is received (as in mpi4py)."""
        if self._message is None and self is not MESSAGE_NO_PROC:
            self._no_proc = False

    def _take(self) -> Any:
        message, self._message = self._message, None
        if message is None:
            raise MPIException(ERR_REQUEST, "this Message was already received (or is "
                               "MESSAGE_NULL)")
        return message

    def recv(self, status: Status | None = None) -> Any:
        if self._no_proc:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            if self is not MESSAGE_NO_PROC:
                self._no_proc = False
            return None
        message = self._take()
        _fill(status, self._comm._comm_rank(message.source), message.tag, message.length)
        return self._comm._decode(message)

    def irecv(self) -> Request:
        status = Status()
        value = self.recv(status)

        def finish(into: Any) -> Any:
            _fill(into, status.source, status.tag, status.count)
            return value

        return Request._make(_always, finish)

    def Recv(self, buf: Any, status: Status | None = None) -> None:
        if self._no_proc:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            if self is not MESSAGE_NO_PROC:
                self._no_proc = False
            return
        message = self._take()
        self._comm._copy_into(buf, message)
        _fill(status, self._comm._comm_rank(message.source), message.tag, message.length)

    def Irecv(self, buf: Any) -> Request:
        status = Status()
        self.Recv(buf, status)
        return Request._make(_always, lambda into: _fill(into, status.source, status.tag,
                                                         status.count))

    @classmethod
    def probe(cls, comm: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG,
              status: Status | None = None) -> Message:
        return comm.mprobe(source, tag, status)

    @classmethod
    def iprobe(cls, comm: Any, source: int = ANY_SOURCE, tag: int = ANY_TAG,
               status: Status | None = None) -> Message | None:
        return comm.improbe(source, tag, status)

    Probe = probe
    Iprobe = iprobe


_MESSAGE_NULL_RECORD = Record()
_NO_PROC_RECORD = Record()
MESSAGE_NULL = Message._make()
MESSAGE_NO_PROC = Message._make(no_proc=True)
