"""mpi4py's object model: every MPI object is a thin wrapper around a handle.

In mpi4py a ``Datatype``, ``Op``, ``Group``, ``Info``, ``Comm`` ... holds a C
handle, and the Python semantics follow from that:

* two wrappers are equal when they hold the same handle (``MPI.Comm(COMM_WORLD)
  == COMM_WORLD`` although they are different objects); a wrapper is false
  when it holds the null handle; wrappers are unhashable and unordered;
* ``Cls(obj)`` copies the handle into a new wrapper (subclasses may call
  ``super().__new__(cls, obj)``); ``Cls()`` is a new null wrapper;
* ``Free()`` releases the object and nulls *this* wrapper only; lower-case
  ``free()`` does that unless the object is predefined, and never touches the
  module constants (``MPI.INT``, ``MPI.COMM_WORLD``);
* module constants pickle by name (``pickle`` gives back the very object),
  copies of them as ``Cls(constant)``; other objects pickle only where mpi4py
  can (datatypes by their decoding, ops by their function, infos by their
  items) and raise ``ValueError`` otherwise;
* ``obj.handle`` is an integer, and ``Cls.fromhandle(obj.handle) == obj``.

Here the "handle" is a :class:`Record`: the shared state of the object (a
datatype's type map, a communicator's ranks and context ...), which carries
its integer handle.  Each class names its null record in ``_NULL`` and the
class whose instances it accepts in ``Cls(obj)`` in ``_FAMILY``.
"""

from __future__ import annotations

import array
import copyreg
import itertools
import weakref
from typing import Any, ClassVar, TypeVar

H = TypeVar("H", bound="Handle")

_counter = itertools.count(1)
_records: weakref.WeakValueDictionary[int, Record] = weakref.WeakValueDictionary()
# handle -> (module constant, its name in the MPI namespace)
_named: dict[int, tuple[Any, str]] = {}


class Record:
    """The shared state behind equal wrappers; ``handle`` is its integer name."""

    __slots__ = ("handle", "__weakref__")

    def __init__(self) -> None:
        self.handle = next(_counter)
        _records[self.handle] = self


def lookup(handle: int) -> Record:
    """The record with this integer handle (a ``ValueError`` if there is none)."""
    try:
        return _records[int(handle)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{handle!r} is not the handle of a live MPI object") from None


def is_named(record: Record) -> bool:
    return record.handle in _named


class Handle:
    """The wrapper: ``_info`` is the record, ``_const`` marks module constants."""

    __slots__ = ("_info", "_const", "__weakref__")

    _NULL: ClassVar[Any]
    _FAMILY: ClassVar[Any]
    _info: Any
    _const: bool

    def __new__(cls: type[H], other: Any = None) -> H:
        obj = object.__new__(cls)
        obj._const = False
        if other is None:
            obj._info = cls._NULL
        elif isinstance(other, cls._FAMILY):
            obj._info = other._info
            obj._copy_state(other)
        else:
            raise TypeError(f"expected {cls._FAMILY.__name__} or None, "
                            f"got {type(other).__name__}")
        return obj

    def _copy_state(self, other: Any) -> None:
        """Per-wrapper state to take along in ``Cls(other)`` (none by default)."""

    @classmethod
    def _wrap(cls: type[H], info: Any) -> H:
        obj = object.__new__(cls)
        obj._const = False
        obj._info = info
        return obj

    @classmethod
    def _define(cls: type[H], info: Any, name: str) -> H:
        """A module constant (``MPI.<name>``) wrapping ``info``."""
        obj = cls._wrap(info)
        obj._const = True
        _named.setdefault(info.handle, (obj, name))
        return obj

    # -- comparisons: by handle, within the family ----------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self._FAMILY):
            return NotImplemented
        return bool(self._info is other._info)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, self._FAMILY):
            return NotImplemented
        return bool(self._info is not other._info)

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return self._info is not self._NULL

    # -- handles --------------------------------------------------------------

    @property
    def handle(self) -> int:
        """The integer handle (``Cls.fromhandle`` gives back an equal object)."""
        return int(self._info.handle)

    @classmethod
    def fromhandle(cls: type[H], handle: int) -> H:
        record = lookup(handle)
        family = cls._FAMILY
        if not isinstance(record, type(family._NULL)):
            raise ValueError(f"handle {handle} is not a {family.__name__} handle")
        return family._from_record(record)

    @classmethod
    def _from_record(cls: type[H], record: Any) -> H:
        return cls._wrap(record)

    def toint(self) -> int:
        return self.handle

    @classmethod
    def fromint(cls: type[H], arg: int, /) -> H:
        return cls.fromhandle(arg)

    def py2f(self) -> int:
        return self.handle

    @classmethod
    def f2py(cls: type[H], arg: int) -> H:
        return cls.fromhandle(arg)

    # -- life cycle -------------------------------------------------------------

    def _predefined(self) -> bool:
        """Whether the record is predefined (``free()`` then only nulls the wrapper)."""
        return is_named(self._info)

    def free(self) -> None:
        """Call ``Free`` if not null or predefined (mpi4py's ``free``)."""
        if self._const or self._info is self._NULL:
            return
        if self._predefined():
            self._info = self._NULL
            return
        self.Free()  # type: ignore[attr-defined]

    # -- pickling ---------------------------------------------------------------

    def __reduce__(self) -> str | tuple[Any, ...]:
        named = _named.get(self._info.handle)
        if named is not None:
            constant, name = named
            if self is constant:
                return name
            return (copyreg.__newobj__, (type(self), constant))  # type: ignore[attr-defined]
        return self._reduce_created()

    def _reduce_created(self) -> tuple[Any, ...]:
        cls = type(self)
        raise ValueError(f"cannot serialize '{cls.__module__}.{cls.__name__}' instance")


def sizeof(obj: Any) -> int:
    """``MPI._sizeof``: the size of an MPI object's C handle."""
    from shoal.spmd.message import Message
    from shoal.spmd.request import Request, Status

    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, Status):
        return 20  # MPICH's MPI_Status: five ints
    if issubclass(cls, (Handle, Request, Message)):
        return 4  # MPICH's handles are ints
    raise TypeError(f"expected an MPI object or class, got {type(obj).__name__}")


# MPI._addressof's cells: object id -> a C int holding its handle (gone with the object).
_cells: dict[int, array.array[int]] = {}


def addressof(obj: Any) -> int:
    """``MPI._addressof``: the address of memory holding the object's handle.

    A ``Status`` gives its own five ints (writes through it change the status).  A
    handle object lives in Python, not in C memory, so it gets a C int of its own that
    holds its handle, refreshed on each call: reading it (ctypes, cffi) gives
    ``MPI._handleof(obj)``; writing it changes nothing (never the object itself).
    """
    from shoal.spmd.message import Message
    from shoal.spmd.request import Request, Status

    if isinstance(obj, Status):
        return obj._mem.buffer_info()[0]
    if isinstance(obj, (Handle, Request, Message)):
        key = id(obj)
        cell = _cells.get(key)
        if cell is None:
            cell = _cells[key] = array.array("i", [0])
            weakref.finalize(obj, _cells.pop, key, None)
        cell[0] = handleof(obj)
        return cell.buffer_info()[0]
    raise TypeError(f"expected an MPI object, got {type(obj).__name__}")


def handleof(obj: Any) -> int:
    """``MPI._handleof``: the object's handle as an integer."""
    from shoal.spmd.message import Message
    from shoal.spmd.request import Request, Status

    if isinstance(obj, (Handle, Request, Message)):
        return int(obj.handle)
    if isinstance(obj, Status):
        return 0
    raise TypeError(f"expected an MPI object, got {type(obj).__name__}")
