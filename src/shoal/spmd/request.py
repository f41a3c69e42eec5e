"""Nonblocking operations: ``Status``, ``Request`` and matched ``Message`` handles.

The surface is mpi4py's: upper-case methods for the buffer API (``Wait``,
``Test``, ``Waitall`` ...) and lower-case ones that also return the received
object (``wait``, ``test``, ``waitall`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shoal.spmd import world
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG
from shoal.wire.codec import PICKLE

PROC_NULL = -1
UNDEFINED = -32766


class Status:
    """Where a received message came from, its tag and size."""

    def __init__(self, status: Status | None = None) -> None:
        self.source = ANY_SOURCE
        self.tag = ANY_TAG
        self.error = 0
        self.count = 0  # in bytes
        self.cancelled = False
        if status is not None:
            self.source, self.tag, self.error = status.source, status.tag, status.error
            self.count, self.cancelled = status.count, status.cancelled

    def Get_source(self) -> int:
        return self.source

    def Set_source(self, source: int) -> None:
        self.source = source

    def Get_tag(self) -> int:
        return self.tag

    def Set_tag(self, tag: int) -> None:
        self.tag = tag

    def Get_error(self) -> int:
        return self.error

    def Set_error(self, error: int) -> None:
        self.error = error

    def Get_count(self, datatype: Any = None) -> int:
        size = 1 if datatype is None else datatype.Get_size()
        if size == 0:
            return 0
        if self.count % size:
            return UNDEFINED
        return self.count // size

    def Get_elements(self, datatype: Any) -> int:
        return self.Get_count(datatype)

    def Set_elements(self, datatype: Any, count: int) -> None:
        self.count = count * datatype.Get_size()

    def Is_cancelled(self) -> bool:
        return self.cancelled

    def Set_cancelled(self, flag: bool) -> None:
        self.cancelled = bool(flag)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Status) and (self.source, self.tag, self.error, self.count,
                                              self.cancelled) == (
            other.source, other.tag, other.error, other.count, other.cancelled)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Status source={self.source} tag={self.tag} count={self.count}>"


def _fill(status: Status | None, source: int, tag: int, count: int,
          cancelled: bool = False) -> None:
    if status is not None:
        status.source, status.tag, status.count = source, tag, count
        status.error, status.cancelled = 0, cancelled


class Request:
    """A pending operation.  ``REQUEST_NULL`` is an inactive one."""

    def __init__(self, done: Callable[[], bool] | None = None,
                 finish: Callable[[Status | None], Any] | None = None,
                 describe: Callable[[], str] | None = None,
                 cancel: Callable[[], bool] | None = None,
                 peek: Callable[[Status], None] | None = None) -> None:
        self._done = done
        self._peek = peek
        self._finish = finish
        self._describe = describe or (lambda: "Wait")
        self._cancel = cancel
        self._completed = done is None
        self._status = Status()

    def __bool__(self) -> bool:
        # Like mpi4py: a request is false once it completed (it became REQUEST_NULL).
        return not self._completed

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return self is other or (self._completed and other._completed)

    __hash__ = object.__hash__

    # -- core -----------------------------------------------------------------

    def _ready(self) -> bool:
        return self._completed or self._done is None or self._done()

    def _complete(self, status: Status | None) -> Any:
        """Finish the request once; later calls see a null request (empty status)."""
        if self._completed:
            if status is not None:
                _fill(status, ANY_SOURCE, ANY_TAG, 0)
            return None
        self._completed = True
        result = self._finish(self._status) if self._finish is not None else None
        if status is not None:
            _fill(status, self._status.source, self._status.tag, self._status.count,
                  self._status.cancelled)
        return result

    def _block(self) -> None:
        if not self._ready():
            done = self._done
            assert done is not None
            world.engine().wait_until(done, self._describe)

    # -- upper case: buffers ----------------------------------------------------

    def Wait(self, status: Status | None = None) -> bool:
        self._block()
        self._complete(status)
        return True

    def Test(self, status: Status | None = None) -> bool:
        if not self._completed:
            world.engine().progress()
        if self._ready():
            self._complete(status)
            return True
        return False

    def Get_status(self, status: Status | None = None) -> bool:
        if not self._completed:
            world.engine().progress()
        ready = self._ready()
        if ready and status is not None:
            if not self._completed and self._peek is not None:
                self._peek(status)
            else:
                _fill(status, self._status.source, self._status.tag, self._status.count,
                      self._status.cancelled)
        return ready

    def Cancel(self) -> None:
        if not self._completed and self._cancel is not None and self._cancel():
            self._status.cancelled = True

    def Free(self) -> None:
        self._completed = True

    free = Free

    # -- lower case: objects ----------------------------------------------------

    def wait(self, status: Status | None = None) -> Any:
        self._block()
        return self._complete(status)

    def test(self, status: Status | None = None) -> tuple[bool, Any | None]:
        if not self._completed:
            world.engine().progress()
        if self._ready():
            return True, self._complete(status)
        return False, None

    def get_status(self, status: Status | None = None) -> bool:
        return self.Get_status(status)

    def cancel(self) -> None:
        self.Cancel()

    # -- many requests ------------------------------------------------------------

    @classmethod
    def Waitall(cls, requests: Sequence[Request], statuses: list[Status] | None = None) -> bool:
        cls.waitall(requests, statuses)
        return True

    @classmethod
    def waitall(cls, requests: Sequence[Request],
                statuses: list[Status] | None = None) -> list[Any]:
        pending = [r for r in requests if not r._ready()]
        if pending:
            world.engine().wait_until(lambda: all(r._ready() for r in pending),
                                      lambda: f"Waitall ({len(pending)} requests)")
        results = []
        for index, request in enumerate(requests):
            status = _status_at(statuses, index)
            results.append(request._complete(status))
        return results

    @classmethod
    def Testall(cls, requests: Sequence[Request], statuses: list[Status] | None = None) -> bool:
        return cls.testall(requests, statuses)[0]

    @classmethod
    def testall(cls, requests: Sequence[Request],
                statuses: list[Status] | None = None) -> tuple[bool, list[Any] | None]:
        world.engine().progress()
        if not all(r._ready() for r in requests):
            return False, None
        return True, cls.waitall(requests, statuses)

    @classmethod
    def Waitany(cls, requests: Sequence[Request], status: Status | None = None) -> int:
        return cls.waitany(requests, status)[0]

    @classmethod
    def waitany(cls, requests: Sequence[Request],
                status: Status | None = None) -> tuple[int, Any]:
        active = [r for r in requests if not r._completed]
        if not active:
            return UNDEFINED, None
        world.engine().wait_until(lambda: any(r._ready() for r in active),
                                  lambda: f"Waitany ({len(active)} requests)")
        for index, request in enumerate(requests):
            if not request._completed and request._ready():
                return index, request._complete(status)
        raise AssertionError("a ready request vanished")  # pragma: no cover

    @classmethod
    def Testany(cls, requests: Sequence[Request],
                status: Status | None = None) -> tuple[int, bool]:
        index, flag, _ = cls.testany(requests, status)
        return index, flag

    @classmethod
    def testany(cls, requests: Sequence[Request],
                status: Status | None = None) -> tuple[int, bool, Any | None]:
        world.engine().progress()
        active = False
        for index, request in enumerate(requests):
            if request._completed:
                continue
            active = True
            if request._ready():
                return index, True, request._complete(status)
        return UNDEFINED, not active, None

    @classmethod
    def Waitsome(cls, requests: Sequence[Request],
                 statuses: list[Status] | None = None) -> list[int] | None:
        return cls.waitsome(requests, statuses)[0]

    @classmethod
    def waitsome(cls, requests: Sequence[Request], statuses: list[Status] | None = None
                 ) -> tuple[list[int] | None, list[Any] | None]:
        active = [r for r in requests if not r._completed]
        if not active:
            return None, None
        world.engine().wait_until(lambda: any(r._ready() for r in active),
                                  lambda: f"Waitsome ({len(active)} requests)")
        return cls.testsome(requests, statuses)

    @classmethod
    def Testsome(cls, requests: Sequence[Request],
                 statuses: list[Status] | None = None) -> list[int] | None:
        return cls.testsome(requests, statuses)[0]

    @classmethod
    def testsome(cls, requests: Sequence[Request], statuses: list[Status] | None = None
                 ) -> tuple[list[int] | None, list[Any] | None]:
        world.engine().progress()
        if all(r._completed for r in requests):
            return None, None
        indices: list[int] = []
        objects: list[Any] = []
        for index, request in enumerate(requests):
            if not request._completed and request._ready():
                objects.append(request._complete(_status_at(statuses, len(indices))))
                indices.append(index)
        return indices, objects


def _status_at(statuses: list[Status] | None, index: int) -> Status | None:
    if statuses is None:
        return None
    while len(statuses) <= index:
        statuses.append(Status())
    return statuses[index]


REQUEST_NULL = Request()


class Message:
    """A message taken out of matching by ``mprobe``/``improbe``, to be received once."""

    def __init__(self, comm: Any = None, message: Any = None, no_proc: bool = False) -> None:
        self._comm = comm
        self._message = message
        self._no_proc = no_proc

    def __bool__(self) -> bool:
        return self._message is not None or self._no_proc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self is other or (not self and not other)

    __hash__ = object.__hash__

    def recv(self, status: Status | None = None) -> Any:
        if self._no_proc:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            self._no_proc = False
            return None
        message, self._message = self._message, None
        if message is None:
            from shoal.spmd.constants import ERR_REQUEST
            from shoal.spmd.constants import Exception as MPIException

            raise MPIException(ERR_REQUEST, "this Message was already received")
        _fill(status, self._comm._comm_rank(message.source), message.tag, message.length)
        return self._comm._decode(message)

    def irecv(self) -> Request:
        status = Status()
        value = self.recv(status)

        def finish(into: Status | None) -> Any:
            _fill(into, status.source, status.tag, status.count)
            return value

        return Request(lambda: True, finish)

    def Recv(self, buf: Any, status: Status | None = None) -> None:
        if self._no_proc:
            _fill(status, PROC_NULL, ANY_TAG, 0)
            self._no_proc = False
            return
        message, self._message = self._message, None
        if message is None:
            from shoal.spmd.constants import ERR_REQUEST
            from shoal.spmd.constants import Exception as MPIException

            raise MPIException(ERR_REQUEST, "this Message was already received")
        self._comm._copy_into(buf, message)
        _fill(status, self._comm._comm_rank(message.source), message.tag, message.length)

    def Irecv(self, buf: Any) -> Request:
        status = Status()
        self.Recv(buf, status)
        return Request(lambda: True, lambda into: _fill(into, status.source, status.tag,
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


MESSAGE_NULL = Message()
MESSAGE_NO_PROC = Message(no_proc=True)

__all__ = ["MESSAGE_NO_PROC", "MESSAGE_NULL", "PICKLE", "REQUEST_NULL", "Message", "Request",
           "Status"]
