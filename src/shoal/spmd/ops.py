"""MPI reduction operations: ``MPI.SUM``, ``MPI.MAXLOC``, ``Op.Create``, ...

An :class:`Op` works two ways, like mpi4py's:

* on Python objects, ``op(x, y)`` (what ``comm.reduce`` and friends use):
  ``SUM(x, y)`` is ``x + y`` (lists concatenate), ``MAXLOC((v, i), (w, j))``
  keeps the smaller index on ties, ``LAND`` gives a bool, a user Op calls
  ``function(x, y, None)``;
* on buffers, :func:`apply_buffers` (what ``Reduce``/``Allreduce`` use):
  ``inoutvec = invec op inoutvec`` in place, with numpy's ufuncs, or with
  typed memoryviews for the basic types when numpy is missing.

Operand order.  MPI reduces in rank order, so for a non-commutative Op the
*left* operand always holds the lower ranks: ``op(x, y)`` has ``x`` from the
lower rank(s), and ``apply_buffers(op, invec, inoutvec, ...)`` has ``invec``
from the lower rank(s) and ``inoutvec`` from the higher.  The collectives
must keep to that; for commutative Ops the order does not matter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.buffers import parse_buffer
from shoal.spmd.constants import ValueErrorException
from shoal.spmd.datatypes import Datatype, as_numpy, struct_format
from shoal.spmd.handles import Handle, Record

# -- the operations on Python objects (mpi4py's semantics) ---------------------


def _max(x: Any, y: Any) -> Any:
    return y if y > x else x


def _min(x: Any, y: Any) -> Any:
    return y if y < x else x


def _maxloc(x: Any, y: Any) -> Any:
    (u, i), (v, j) = x, y
    if u > v:
        return u, i
    if v > u:
        return v, j
    return (v, j) if j < i else (u, i)


def _minloc(x: Any, y: Any) -> Any:
    (u, i), (v, j) = x, y
    if u < v:
        return u, i
    if v < u:
        return v, j
    return (v, j) if j < i else (u, i)


_INTEGERS = frozenset({"int", "uint", "char"})
_ARITHMETIC = _INTEGERS | {"float", "complex"}
_ORDERED = _INTEGERS | {"float"}
_LOGICAL = _INTEGERS | {"bool"}
_BITWISE = _INTEGERS | {"byte"}
_PAIRS = frozenset({"pair"})

UserFunction = Callable[[Any, Any, Any], Any]


class _OpInfo(Record):
    """The shared "handle" behind Op objects."""

    def __init__(self, name: str, *, pyfunc: Callable[[Any, Any], Any] | None = None,
                 ufunc: str = "", categories: frozenset[str] | None = None,
                 user: UserFunction | None = None, commute: bool = True,
                 predefined: bool = False) -> None:
        super().__init__()
        self.name = name
        self.pyfunc = pyfunc
        self.ufunc = ufunc  # numpy ufunc name for buffers ("" for the special ones)
        self.categories = categories  # datatype categories allowed; None: any
        self.user = user
        self.commute = commute
        self.predefined = predefined


_NULL_INFO = _OpInfo("OP_NULL", commute=False, predefined=True)


# mpi4py (and MPI libraries) hold a fixed number of user operations at once.
MAX_USER_OPS = 32
_user_slots: list[Any] = [None] * MAX_USER_OPS
_user_lock = threading.Lock()


class Op(Handle):
    """``MPI.Op``: a reduction operation, predefined or made by :meth:`Create`."""

    __slots__ = ("_clone",)
    __module__ = "shoal.MPI"
    _NULL = _NULL_INFO
    _info: _OpInfo
    _clone: bool

    @classmethod
    def Create(cls, function: UserFunction, commute: bool = False) -> Op:
        """A user operation.  For buffers, ``function(invec, inoutvec, datatype)`` must
        set ``inoutvec = invec op inoutvec``: both are ``MPI.buffer`` byte views (as in
        mpi4py; ``numpy.frombuffer(invec, dtype)`` reads them), ``invec`` holds the lower
        ranks.  For objects it is called as ``function(x, y, None)`` and returns the
        result."""
        if not callable(function):
            raise TypeError(f"Op.Create needs a callable, got {type(function).__name__}")
        name = getattr(function, "__name__", "user")
        info = _OpInfo(name, user=function, commute=bool(commute))
        with _user_lock:
            try:
                slot = _user_slots.index(None)
            except ValueError:
                raise RuntimeError("cannot create too many user-defined reduction "
                                   f"operations (at most {MAX_USER_OPS} at once: Free "
                                   "some)") from None
            _user_slots[slot] = info
        return cls._wrap(info)

    @classmethod
    def _from_record(cls, record: Any) -> Op:
        op = cls._wrap(record)
        op._clone = True  # made from a bare handle: the function is not known to it
        return op

    def _reduce_created(self) -> tuple[Any, ...]:
        info = self._info
        if info.user is None or getattr(self, "_clone", False):
            raise ValueError("cannot pickle user-defined reduction operation made from a "
                             "handle")
        return (type(self).Create, (info.user, info.commute))

    def _predefined(self) -> bool:
        return bool(self._info.predefined)

    def __call__(self, x: Any, y: Any, /) -> Any:
        info = self._info
        if info.pyfunc is not None:
            return info.pyfunc(x, y)
        if info.user is not None:
            return info.user(x, y, None)
        raise ValueErrorException(C.ERR_OP, "cannot call MPI.OP_NULL (or a freed Op)")

    def Is_commutative(self) -> bool:
        return self._info.commute

    @property
    def is_commutative(self) -> bool:
        return self._info.commute

    @property
    def is_predefined(self) -> bool:
        return self._info.predefined

    @property
    def name(self) -> str:
        """shoal's own: ``"SUM"``, ``"MAXLOC"``, ... or the user function's name."""
        return self._info.name

    def Free(self) -> None:
        info = self._info
        if info.predefined:
            if self._const or info is _NULL_INFO:
                raise C.Exception(C.ERR_OP, f"cannot free the predefined MPI.{info.name}")
            self._info = _NULL_INFO
            return
        with _user_lock:
            if info in _user_slots:
                _user_slots[_user_slots.index(info)] = None
        self._info = _NULL_INFO

    def Reduce_local(self, inbuf: Any, inoutbuf: Any) -> None:
        """``inoutbuf = inbuf op inoutbuf`` on this process (MPI_Reduce_local)."""
        if self._info.name in ("REPLACE", "NO_OP") and self._info.predefined:
            raise C.Exception(C.ERR_OP, f"MPI.{self._info.name} is only for one-sided "
                              "accumulate operations, not for Reduce_local")
        if inbuf is C.IN_PLACE or inoutbuf is C.IN_PLACE:
            raise C.Exception(C.ERR_BUFFER, "MPI.IN_PLACE is not allowed in Reduce_local")
        src = parse_buffer(inbuf, readonly=True)
        dst = parse_buffer(inoutbuf, readonly=False)
        if src.count != dst.count:
            raise ValueErrorException(C.ERR_COUNT, f"mismatch in send count {src.count} "
                                      f"and receive count {dst.count}")
        if src.datatype.size != dst.datatype.size:
            raise ValueErrorException(C.ERR_TYPE, "mismatch in send and receive MPI datatypes")
        apply_buffers(self, src.view, dst.view, dst.datatype)

    def __repr__(self) -> str:
        info = self._info
        return f"<MPI.Op {info.name}>" if info.predefined else f"<MPI.Op user {info.name}>"



Op._FAMILY = Op
_predefined_ops: dict[str, Op] = {"OP_NULL": Op._define(_NULL_INFO, "OP_NULL")}


def _define(name: str, pyfunc: Callable[[Any, Any], Any], ufunc: str,
            categories: frozenset[str] | None, commute: bool = True) -> Op:
    op = Op._define(_OpInfo(name, pyfunc=pyfunc, ufunc=ufunc, categories=categories,
                            commute=commute, predefined=True), name)
    _predefined_ops[name] = op
    return op


OP_NULL = _predefined_ops["OP_NULL"]
MAX = _define("MAX", _max, "maximum", _ORDERED)
MIN = _define("MIN", _min, "minimum", _ORDERED)
SUM = _define("SUM", lambda x, y: x + y, "add", _ARITHMETIC)
PROD = _define("PROD", lambda x, y: x * y, "multiply", _ARITHMETIC)
LAND = _define("LAND", lambda x, y: bool(x) & bool(y), "logical_and", _LOGICAL)
LOR = _define("LOR", lambda x, y: bool(x) | bool(y), "logical_or", _LOGICAL)
LXOR = _define("LXOR", lambda x, y: bool(x) ^ bool(y), "logical_xor", _LOGICAL)
BAND = _define("BAND", lambda x, y: x & y, "bitwise_and", _BITWISE)
BOR = _define("BOR", lambda x, y: x | y, "bitwise_or", _BITWISE)
BXOR = _define("BXOR", lambda x, y: x ^ y, "bitwise_xor", _BITWISE)
MAXLOC = _define("MAXLOC", _maxloc, "", _PAIRS)
MINLOC = _define("MINLOC", _minloc, "", _PAIRS)
# MPICH reports both as non-commutative: the operands' order is their meaning.
REPLACE = _define("REPLACE", lambda x, y: y, "", None, commute=False)
NO_OP = _define("NO_OP", lambda x, y: x, "", None, commute=False)


# -- the operations on buffers --------------------------------------------------


def check_op(op: Op, datatype: Datatype) -> None:
    """MPI's error for an op that cannot reduce elements of ``datatype`` (``OP_NULL``, or
    a predefined op not defined for their kind).  The collectives ask on every rank before
    anything travels, as MPICH does: a rank that only sends would otherwise go on and
    wait for ranks that raised."""
    if not isinstance(op, Op):
        raise TypeError(f"a reduction's op must be an MPI.Op, not {type(op).__name__}")
    info = op._info
    if info is _NULL_INFO:
        raise C.Exception(C.ERR_OP, "MPI.OP_NULL (or a freed Op) cannot reduce")
    if info.user is None and info.categories is not None:
        category = datatype.category
        if category not in info.categories:
            raise C.Exception(C.ERR_OP, f"MPI.{info.name} is not defined for "
                              f"{datatype.name or 'this datatype'} ({category} elements)")


def apply_buffers(op: Op, invec: memoryview, inoutvec: memoryview, datatype: Datatype) -> None:
    """``inoutvec = invec op inoutvec``, element by element, in place.

    ``invec`` holds the lower rank(s) and ``inoutvec`` the higher (this only
    matters to non-commutative user Ops).  Both are byte views of the same
    length holding elements of ``datatype``.
    """
    check_op(op, datatype)
    info = op._info
    if inoutvec.readonly:
        raise C.Exception(C.ERR_BUFFER, "the in-out buffer of a reduction is read-only")
    if invec.nbytes != inoutvec.nbytes:
        raise C.Exception(C.ERR_COUNT, f"reduction operands differ in length: "
                          f"{invec.nbytes} and {inoutvec.nbytes} bytes")
    if info.user is not None:
        from shoal.spmd.memory import _buffer_class

        buffer = _buffer_class()

        # mpi4py hands user functions byte buffers over the operands and a Datatype
        # handle of their elements.
        info.user(buffer._make(invec, invec.nbytes, True), buffer._make(inoutvec,
                  inoutvec.nbytes, False), type(datatype)._wrap(datatype._info))
        return
    if info.name == "NO_OP":
        return
    if info.name == "REPLACE":
        inoutvec[:] = invec
        return
    try:
        import numpy  # noqa: F401
    except ImportError:
        _apply_without_numpy(info, invec, inoutvec, datatype)
        return
    _apply_numpy(info, invec, inoutvec, datatype)


def _apply_numpy(info: _OpInfo, invec: memoryview, inoutvec: memoryview,
                 datatype: Datatype) -> None:
    import numpy as np

    a = as_numpy(invec, datatype)
    b = as_numpy(inoutvec, datatype)
    if datatype.category == "char":  # 'S1' cannot add: MPICH treats char as int8
        a, b = a.view(np.int8), b.view(np.int8)
    if info.ufunc:
        getattr(np, info.ufunc)(a, b, out=b)
        return
    # MAXLOC / MINLOC on value-index pairs: ties keep the smaller index.
    av, ai, bv, bi = a["value"], a["index"], b["value"], b["index"]
    better = (av > bv) if info.name == "MAXLOC" else (av < bv)
    take = better | ((av == bv) & (ai < bi))
    b[take] = a[take]


def _wrap_integer(value: int, fmt: str, bits: int) -> int:
    """C's wrap-around for integer overflow, which typed memoryviews refuse."""
    value &= (1 << bits) - 1
    if fmt.islower() and value >> (bits - 1):
        value -= 1 << bits
    return value


def _apply_without_numpy(info: _OpInfo, invec: memoryview, inoutvec: memoryview,
                         datatype: Datatype) -> None:
    fmt = struct_format(datatype)
    if fmt is None or info.pyfunc is None or info.name in ("MAXLOC", "MINLOC"):
        raise C.Exception(C.ERR_OP, f"MPI.{info.name} on {datatype.name or 'this datatype'} "
                          "needs numpy: pip install numpy")
    cast: Callable[..., memoryview] = memoryview.cast  # fmt is only known at run time
    a = cast(invec, fmt)
    b = cast(inoutvec, fmt)
    func = info.pyfunc
    if fmt == "?":
        for k in range(len(b)):
            b[k] = bool(func(a[k], b[k]))
    elif fmt in "fd":
        for k in range(len(b)):
            b[k] = func(a[k], b[k])
    else:
        bits = 8 * b.itemsize
        for k in range(len(b)):
            b[k] = _wrap_integer(int(func(a[k], b[k])), fmt, bits)


# Only mpi4py's names: shoal.spmd.mpi star-imports this; apply_buffers is
# imported by name.
__all__ = [
    "Op",
    "OP_NULL", "MAX", "MIN", "SUM", "PROD", "LAND", "LOR", "LXOR", "BAND", "BOR", "BXOR",
    "MAXLOC", "MINLOC", "REPLACE", "NO_OP",
]
