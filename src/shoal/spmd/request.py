"""Nonblocking operations: ``Request``, ``Prequest``, ``Grequest`` (``Status`` is in
spmd/status.py, ``Message`` in spmd/message.py).

The surface is mpi4py's: upper-case methods for the buffer API (``Wait``,
``Test``, ``Waitall`` ...) and lower-case ones that also return the received
object (``wait``, ``test``, ``waitall`` ...).

A request is made by the operation that starts it, from three functions:
``done()`` (has it completed? it may make progress), ``finish(status)`` (run
once at completion: fill the status, decode or unpack the data, return the
object) and ``describe()`` (what a rank blocked on it waits for).  A plain
request becomes ``REQUEST_NULL`` when it completes; a persistent one
(:class:`Prequest`) becomes inactive and can be started again.  A copy
``Request(req)`` shares the operation (mpi4py copies the handle).
"""

from __future__ import annotations

import array
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from shoal.spmd import world
from shoal.spmd.constants import ERR_OTHER, ERR_REQUEST
from shoal.spmd.constants import Exception as MPIException
from shoal.spmd.handles import Record, lookup
from shoal.spmd.matching import ANY_SOURCE, ANY_TAG
from shoal.spmd.status import UNDEFINED, Status, _copy_result, _fill, _Result

PROC_NULL = -1


class _Op:
    """The shared state of a request: what it waits for and how it completes."""

    __slots__ = ("done", "finish", "describe", "cancel", "peek", "active", "result",
                 "handle", "start", "greq", "part")

    def __init__(self, done: Callable[[], bool] | None, finish: Any, describe: Any,
                 cancel: Any, peek: Any) -> None:
        self.done = done
        self.finish = finish
        self.describe = describe
        self.cancel = cancel
        self.peek = peek
        self.active = done is not None
        self.result: _Result | None = None
        self.handle: _RequestRecord | None = None
        self.start: Callable[[], Request] | None = None  # persistent requests
        self.greq: Any = None  # generalized requests
        self.part: Any = None  # partitioned requests (spmd/partitioned.py)


class _RequestRecord(Record):
    """A registered handle for a request (made only when ``.handle`` is asked for)."""

    __slots__ = ("op",)

    def __init__(self, op: _Op | None) -> None:
        super().__init__()
        self.op = op


_NULL_RECORD = _RequestRecord(None)


class Request:
    """A pending operation.  ``REQUEST_NULL`` is an inactive one."""

    __slots__ = ("_op", "_null", "__weakref__")
    __module__ = "shoal.MPI"

    _op: _Op
    _null: bool

    def __new__(cls, request: Request | None = None) -> Request:
        obj = object.__new__(cls)
        if request is None:
            obj._op, obj._null = _NULL_OP, True
        elif isinstance(request, Request):
            obj._op, obj._null = request._op, request._null
        else:
            raise TypeError(f"expected Request or None, got {type(request).__name__}")
        return obj

    @classmethod
    def _make(cls, done: Callable[[], bool] | None = None,
              finish: Callable[[Any], Any] | None = None,
              describe: Callable[[], str] | None = None,
              cancel: Callable[[], bool] | None = None,
              peek: Callable[[Any], None] | None = None) -> Request:
        obj = object.__new__(cls)
        obj._op = _Op(done, finish, describe, cancel, peek)
        obj._null = done is None
        return obj

    def __bool__(self) -> bool:
        # Like mpi4py: a request is false once it completed (it became REQUEST_NULL).
        return not self._null

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (self._null and other._null) or (not self._null and not other._null
                                                and self._op is other._op)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> str | tuple[Any, ...]:
        import copyreg

        if self._null:
            if self is REQUEST_NULL:
                return "REQUEST_NULL"
            return (copyreg.__newobj__, (type(self), REQUEST_NULL))  # type: ignore
        cls = type(self)
        raise ValueError(f"cannot serialize '{cls.__module__}.{cls.__name__}' instance")

    # -- handles ----------------------------------------------------------------

    @property
    def handle(self) -> int:
        if self._null:
            return int(_NULL_RECORD.handle)
        op = self._op
        if op.handle is None:
            op.handle = _RequestRecord(op)
        return int(op.handle.handle)

    @classmethod
    def fromhandle(cls, handle: int) -> Request:
        record = lookup(handle)
        if not isinstance(record, _RequestRecord):
            raise ValueError(f"handle {handle} is not a Request handle")
        obj = object.__new__(cls)
        obj._op = record.op if record.op is not None else _NULL_OP
        obj._null = record.op is None
        return obj

    def toint(self) -> int:
        return self.handle

    @classmethod
    def fromint(cls, arg: int, /) -> Request:
        return cls.fromhandle(arg)

    def py2f(self) -> int:
        return self.handle

    @classmethod
    def f2py(cls, arg: int) -> Request:
        return cls.fromhandle(arg)

    # -- core -----------------------------------------------------------------

    def _ready(self) -> bool:
        op = self._op
        return not op.active or op.done is None or op.done()

    def _complete(self, status: Any) -> Any:
        """Finish the operation once; a null or inactive request gives an empty status."""
        op = self._op
        if self._null or not op.active:
            if status is not None:
                _fill(status, ANY_SOURCE, ANY_TAG, 0)
            return None
        op.active = False
        result = _Result()
        op.result = result
        value = op.finish(result) if op.finish is not None else None
        if op.start is None:
            self._null = True
        if status is not None:
            _copy_result(status, result)
        return value

    def _block(self) -> None:
        if not self._ready():
            op = self._op
            assert op.done is not None
            world.engine().wait_until(op.done, op.describe or _waiting)

    # -- upper case: buffers ----------------------------------------------------

    def Wait(self, status: Status | None = None) -> bool:
        self._block()
        self._complete(status)
        return True

    def Test(self, status: Status | None = None) -> bool:
        if not self._null and self._op.active:
            world.engine().progress()
        if self._ready():
            self._complete(status)
            return True
        world.engine().idle()  # a program polling in a loop lets the others run
        return False

    def Get_status(self, status: Status | None = None) -> bool:
        op = self._op
        if self._null or not op.active:
            if status is not None:
                _fill(status, ANY_SOURCE, ANY_TAG, 0)
            return True
        world.engine().progress()
        ready = self._ready()
        if ready and status is not None:
            if op.peek is not None:
                op.peek(status)
            else:
                _fill(status, ANY_SOURCE, ANY_TAG, 0)
        return ready

    def Cancel(self) -> None:
        op = self._op
        if self._null:
            raise MPIException(ERR_REQUEST, "cannot cancel MPI.REQUEST_NULL")
        if op.active and op.cancel is not None:
            op.cancel()  # a cancelled operation completes; its finish reports it

    def Free(self) -> None:
        op = self._op
        if self._null:
            raise MPIException(ERR_REQUEST, "cannot free MPI.REQUEST_NULL")
        if op.greq is not None and op.active:
            return  # a generalized request is freed when it completes
        if op.start is not None and op.active:
            raise MPIException(ERR_REQUEST, "cannot free a persistent request while it "
                               "is active: Wait for it first")
        self._null = True

    def free(self) -> None:
        if not self._null:
            self.Free()

    # -- lower case: objects ----------------------------------------------------

    def wait(self, status: Status | None = None) -> Any:
        self._block()
        return self._complete(status)

    def test(self, status: Status | None = None) -> tuple[bool, Any | None]:
        if not self._null and self._op.active:
            world.engine().progress()
        if self._ready():
            return True, self._complete(status)
        world.engine().idle()
        return False, None

    def get_status(self, status: Status | None = None) -> bool:
        return self.Get_status(status)

    def cancel(self) -> None:
        self.Cancel()

    # -- many requests ------------------------------------------------------------

    @classmethod
    def Waitall(cls, requests: Sequence[Request], statuses: Any = None) -> bool:
        cls.waitall(requests, statuses)
        return True

    @classmethod
    def waitall(cls, requests: Sequence[Request], statuses: Any = None) -> list[Any]:
        requests = list(requests)
        pending = [r for r in requests if not r._ready()]
        if pending:
            world.engine().wait_until(lambda: all(r._ready() for r in pending),
                                      lambda: f"Waitall ({len(pending)} requests)")
        results = []
        done = _statuses(len(requests), statuses)
        for index, request in enumerate(requests):
            results.append(request._complete(done[index] if done is not None else None))
        _give_back(statuses, done, len(requests))
        return results

    @classmethod
    def Testall(cls, requests: Sequence[Request], statuses: Any = None) -> bool:
        return cls.testall(requests, statuses)[0]

    @classmethod
    def testall(cls, requests: Sequence[Request], statuses: Any = None
                ) -> tuple[bool, list[Any] | None]:
        requests = list(requests)
        engine = world.engine()
        engine.progress()
        if not all(r._ready() for r in requests):
            engine.idle()
            _give_back(statuses, _statuses(len(requests), statuses), len(requests))
            return False, None
        return True, cls.waitall(requests, statuses)

    @classmethod
    def Get_status_all(cls, requests: Sequence[Request], statuses: Any = None) -> bool:
        requests = list(requests)
        world.engine().progress()
        flag = all(r._ready() for r in requests)
        done = _statuses(len(requests), statuses)
        if flag and done is not None:
            for index, request in enumerate(requests):
                request.Get_status(done[index])
        _give_back(statuses, done, len(requests))
        return flag

    get_status_all = Get_status_all

    @classmethod
    def Waitany(cls, requests: Sequence[Request], status: Status | None = None) -> int:
        return cls.waitany(requests, status)[0]

    @classmethod
    def waitany(cls, requests: Sequence[Request],
                status: Status | None = None) -> tuple[int, Any]:
        requests = list(requests)
        active = [r for r in requests if not r._null and r._op.active]
        if not active:
            if status is not None:
                _fill(status, ANY_SOURCE, ANY_TAG, 0)
            return UNDEFINED, None
        if not any(r._ready() for r in active):
            world.engine().wait_until(lambda: any(r._ready() for r in active),
                                      lambda: f"Waitany ({len(active)} requests)")
        for index, request in enumerate(requests):
            if not request._null and request._op.active and request._ready():
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
            if request._null or not request._op.active:
                continue
            active = True
            if request._ready():
                return index, True, request._complete(status)
        if not active and status is not None:
            _fill(status, ANY_SOURCE, ANY_TAG, 0)
        return UNDEFINED, not active, None

    @classmethod
    def Get_status_any(cls, requests: Sequence[Request],
                       status: Status | None = None) -> tuple[int, bool]:
        world.engine().progress()
        active = False
        for index, request in enumerate(requests):
            if request._null or not request._op.active:
                continue
            active = True
            if request._ready():
                request.Get_status(status)
                return index, True
        if not active and status is not None:
            _fill(status, ANY_SOURCE, ANY_TAG, 0)
        return UNDEFINED, not active

    get_status_any = Get_status_any

    @classmethod
    def Waitsome(cls, requests: Sequence[Request],
                 statuses: Any = None) -> list[int] | None:
        return cls.waitsome(requests, statuses)[0]

    @classmethod
    def waitsome(cls, requests: Sequence[Request], statuses: Any = None
                 ) -> tuple[list[int] | None, list[Any] | None]:
        requests = list(requests)
        active = [r for r in requests if not r._null and r._op.active]
        if not active:
            return None, None
        if not any(r._ready() for r in active):
            world.engine().wait_until(lambda: any(r._ready() for r in active),
                                      lambda: f"Waitsome ({len(active)} requests)")
        return cls.testsome(requests, statuses)

    @classmethod
    def Testsome(cls, requests: Sequence[Request],
                 statuses: Any = None) -> list[int] | None:
        return cls.testsome(requests, statuses)[0]

    @classmethod
    def testsome(cls, requests: Sequence[Request], statuses: Any = None
                 ) -> tuple[list[int] | None, list[Any] | None]:
        requests = list(requests)
        world.engine().progress()
        if all(r._null or not r._op.active for r in requests):
            return None, None
        done = _statuses(len(requests), statuses)
        indices: list[int] = []
        objects: list[Any] = []
        for index, request in enumerate(requests):
            if not request._null and request._op.active and request._ready():
                slot = done[len(indices)] if done is not None else None
                objects.append(request._complete(slot))
                indices.append(index)
        _give_back(statuses, done, len(indices))
        return indices, objects

    @classmethod
    def Get_status_some(cls, requests: Sequence[Request],
                        statuses: Any = None) -> list[int] | None:
        requests = list(requests)
        world.engine().progress()
        if all(r._null or not r._op.active for r in requests):
            return None
        done = _statuses(len(requests), statuses)
        indices: list[int] = []
        for index, request in enumerate(requests):
            if not request._null and request._op.active and request._ready():
                request.Get_status(done[len(indices)] if done is not None else None)
                indices.append(index)
        _give_back(statuses, done, len(indices))
        return indices

    get_status_some = Get_status_some


def _waiting() -> str:
    return "Wait"


def _statuses(count: int, statuses: Any) -> list[Status] | None:
    """Fresh statuses to complete into (copied into the caller's afterwards)."""
    if statuses is None:
        return None
    return [Status() for _ in range(count)]


def _give_back(statuses: Any, done: list[Status] | None, count: int) -> None:
    """Copy completed statuses into the caller's sequence (mpi4py's rule: a list grows to
    the ``count`` of completed requests; a tuple is filled as far as it goes)."""
    if statuses is None or done is None:
        return
    if isinstance(statuses, list) and len(statuses) < count:
        statuses.extend(Status() for _ in range(len(statuses), count))
    for i in range(min(len(done), len(statuses))):
        statuses[i]._mem = array.array("i", done[i]._mem)


_NULL_OP = _Op(None, None, None, None, None)
_NULL_OP.handle = _NULL_RECORD


class Prequest(Request):
    """A persistent request: ``Start`` runs its operation again, ``Wait`` leaves it
    inactive (not null) until ``Free``."""

    __slots__ = ()
    __module__ = "shoal.MPI"

    def __new__(cls, request: Request | None = None) -> Prequest:
        if request is not None and not request._null and not isinstance(request, Prequest):
            raise TypeError(f"expected Prequest, got {type(request).__name__}")
        return super().__new__(cls, request)  # type: ignore[return-value]

    @classmethod
    def _persistent(cls, start: Callable[[], Request]) -> Prequest:
        obj = object.__new__(cls)
        op = _Op(None, None, None, None, None)
        op.start = start
        op.active = False
        obj._op, obj._null = op, False
        return obj

    def Start(self) -> None:
        op = self._op
        if self._null or op.start is None:
            raise MPIException(ERR_REQUEST, "Start needs a persistent request (not null)")
        if op.active:
            raise MPIException(ERR_REQUEST, "this persistent request is already active: "
                               "Wait for it before starting it again")
        inner = op.start()
        inner_op = inner._op
        op.done = inner_op.done if not inner._null else None
        op.finish = inner_op.finish
        op.describe = inner_op.describe
        op.cancel = inner_op.cancel
        op.peek = inner_op.peek
        op.active = True
        if op.done is None:
            op.done = _always

    @classmethod
    def Startall(cls, requests: Sequence[Prequest]) -> None:
        for request in requests:
            request.Start()

    # -- partitioned requests (spmd/partitioned.py) -------------------------------------

    def _partitioned(self) -> Any:
        part = self._op.part
        if part is None or self._null:
            raise MPIException(ERR_REQUEST, "this is not a partitioned request "
                               "(Comm.Psend_init / Comm.Precv_init)")
        return part

    def Pready(self, partition: int) -> None:
        self._partitioned().ready(self._op, (partition,))

    def Pready_range(self, partition_low: int, partition_high: int) -> None:
        self._partitioned().ready(self._op, range(int(partition_low),
                                                  int(partition_high) + 1))

    def Pready_list(self, partitions: Sequence[int]) -> None:
        self._partitioned().ready(self._op, list(partitions))

    def Parrived(self, partition: int) -> bool:
        return bool(self._partitioned().arrived(self._op, partition))


def _always() -> bool:
    return True


def _callback(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Call a generalized request's function as mpi4py does: an exception it raises is
    printed to stderr and the MPI call raises ``MPI.Exception`` (``ERR_OTHER``, or the
    class of an ``MPI.Exception``)."""
    try:
        fn(*args, **kwargs)
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        code = exc.Get_error_class() if isinstance(exc, MPIException) else ERR_OTHER
        raise MPIException(code, f"a generalized request's function raised "
                           f"{type(exc).__name__}: {exc}") from exc


class _Greq:
    __slots__ = ("query_fn", "free_fn", "cancel_fn", "args", "kwargs", "complete", "obj")

    def __init__(self, query_fn: Any, free_fn: Any, cancel_fn: Any, args: Any,
                 kwargs: Any) -> None:
        self.query_fn, self.free_fn, self.cancel_fn = query_fn, free_fn, cancel_fn
        self.args = tuple(args) if args is not None else ()
        self.kwargs = dict(kwargs) if kwargs is not None else {}
        self.complete = False
        self.obj: Any = None


class Grequest(Request):
    """A generalized request: the program says when it is complete."""

    __slots__ = ()
    __module__ = "shoal.MPI"

    def __new__(cls, request: Request | None = None) -> Grequest:
        if request is not None and not request._null and not isinstance(request, Grequest):
            raise TypeError(f"expected Grequest, got {type(request).__name__}")
        return super().__new__(cls, request)  # type: ignore[return-value]

    @classmethod
    def Start(cls, query_fn: Callable[..., None] | None = None,
              free_fn: Callable[..., None] | None = None,
              cancel_fn: Callable[..., None] | None = None,
              args: tuple[Any] | None = None,
              kwargs: dict[str, Any] | None = None) -> Grequest:
        state = _Greq(query_fn, free_fn, cancel_fn, args, kwargs)

        def finish(result: _Result) -> Any:
            status = Status()
            try:
                if state.query_fn is not None:
                    _callback(state.query_fn, status, *state.args, **state.kwargs)
                result.source, result.tag = status.source, status.tag
                result.error, result.count = status.error, status.count
                result.cancelled = status.cancelled if state.cancel_fn is not None else False
            finally:
                if state.free_fn is not None:
                    _callback(state.free_fn, *state.args, **state.kwargs)
            return state.obj

        def cancel() -> bool:
            if state.cancel_fn is not None:
                _callback(state.cancel_fn, state.complete, *state.args, **state.kwargs)
            return False

        obj = object.__new__(cls)
        op = _Op(lambda: state.complete, finish, lambda: "a generalized request", cancel, None)
        op.greq = state
        obj._op, obj._null = op, False
        return obj

    def Complete(self) -> None:
        greq = self._op.greq
        if greq is None:
            raise MPIException(ERR_REQUEST, "Complete needs an active generalized request")
        greq.complete = True

    def complete(self, obj: Any = None) -> None:
        greq = self._op.greq
        if greq is not None:
            greq.obj = obj
        Grequest.Complete(self)


REQUEST_NULL = Request()


def proc_null_request(receive: bool = True) -> Request:
    """An active request that completes at once (mpi4py's ``isend``/``irecv`` to or from
    ``MPI.PROC_NULL``): a receive with the PROC_NULL status, a send with the empty one,
    as MPICH reports them."""
    return Request._make(_always, _proc_null_finish if receive else None)


def _proc_null_finish(result: Any) -> None:
    _fill(result, PROC_NULL, ANY_TAG, 0)


__all__ = ["REQUEST_NULL", "Grequest", "Prequest", "Request", "Status"]
