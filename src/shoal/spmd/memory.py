"""``MPI.buffer`` (alias ``MPI.memory``), ``Alloc_mem``/``Free_mem`` and addresses.

``MPI.buffer`` is mpi4py's byte view on memory: made from any buffer
(``buffer(obj)``, ``buffer.frombuffer``), from a raw address
(``buffer.fromaddress``) or freshly allocated (``buffer.allocate``,
``MPI.Alloc_mem``); it knows its ``address``, slices into views, and can be
released.  It exports the buffer protocol: through ``__buffer__`` on Python
3.12 and later, and on older Pythons by being a one-dimensional ``uint8``
numpy array when numpy is installed (without numpy there, shoal's own calls
still accept it, but ``memoryview(buf)`` does not).

The class is made when first asked for (``MPI.buffer``, this module's ``buffer``):
importing numpy costs a rank some 40 ms and, with its BLAS threads, as much CPU again,
which a program that never touches ``MPI.buffer`` (nor numpy) need not pay.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from typing import Any

from shoal.spmd import constants as C


def _address(view: memoryview) -> int:
    from shoal.transport import cma

    return cma.address(view)


def _raw_view(obj: Any, readonly: bool) -> memoryview:
    if isinstance(obj, (list, tuple)) or obj is None or isinstance(obj, (int, float)):
        raise TypeError(f"expected a buffer, got {type(obj).__name__}")
    if isinstance(obj, _BufferAPI):
        view = obj._bytes()
    else:
        try:
            view = memoryview(obj)
        except TypeError:
            from shoal.spmd.foreign import foreign_view

            found = foreign_view(obj)
            if found is None:
                raise TypeError(f"expected a buffer, got {type(obj).__name__}") from None
            view = found[0]
    if not view.c_contiguous:
        raise BufferError("the buffer is not contiguous")
    view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    return view.toreadonly() if readonly else view


def _from_address(address: int, nbytes: int) -> Any:
    address, nbytes = int(address), int(nbytes)
    if nbytes < 0:
        raise ValueError(f"negative buffer length {nbytes}")
    if address == 0 and nbytes > 0:
        raise ValueError("cannot make a buffer from the NULL address")
    return (ctypes.c_ubyte * nbytes).from_address(address) if nbytes else bytearray()


class _BufferAPI:
    """What both forms of ``MPI.buffer`` share, in terms of ``_bytes()``."""

    _obj: Any
    _released: bool
    _from_address: bool

    def _bytes(self) -> memoryview:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    @classmethod
    def allocate(cls, nbytes: int, clear: bool = False) -> Any:
        size = _nonnegative(nbytes)
        return cls._make(bytearray(size), size, False)

    @classmethod
    def frombuffer(cls, obj: Any, readonly: bool = False) -> Any:
        view = _raw_view(obj, readonly)
        return cls._make(obj, view.nbytes, readonly or view.readonly)

    def _host(self) -> None:
        """Refuse host access to device memory, as mpi4py does."""
        from shoal.spmd.foreign import is_device

        if self._obj is not None and not isinstance(self._obj, (bytes, bytearray, memoryview)) \
                and is_device(self._obj):
            raise BufferError("MPI.buffer: device memory cannot be accessed from the host")

    @classmethod
    def fromaddress(cls, address: int, nbytes: int, readonly: bool = False) -> Any:
        raw = _from_address(address, nbytes)
        return cls._make(raw, int(nbytes), readonly)

    @property
    def address(self) -> int:
        return 0 if self._released or (self._obj is None and not len(self) \
            and not self._from_address) else _address(self._bytes())

    @property
    def obj(self) -> Any:
        return None if self._released else self._obj

    @property
    def format(self) -> str:
        return "B"

    @property
    def itemsize(self) -> int:
        return 1

    def toreadonly(self) -> Any:
        return type(self)._make(self._obj, len(self), True)

    @classmethod
    def _make(cls, raw: Any, nbytes: int, readonly: bool) -> Any:
        raise NotImplementedError

    def cast(self, format: str, shape: Any = None) -> memoryview:
        self._host()
        view: Any = self._bytes()
        return view.cast(format) if shape is None else view.cast(format, list(shape))


_EMPTY: Any = object()  # buffer(): an empty buffer (buffer(None) is an error, as in mpi4py)


def _nonnegative(nbytes: Any) -> int:
    if not isinstance(nbytes, int) or isinstance(nbytes, bool):
        raise TypeError(f"expected an integer size, got {type(nbytes).__name__}")
    if nbytes < 0:
        raise ValueError(f"negative buffer size {nbytes}")
    return nbytes


def _check_index(item: Any, length: int) -> Any:
    if isinstance(item, slice):
        start, stop, step = item.indices(length)
        if step != 1:
            raise IndexError("MPI.buffer slices must be contiguous (step 1)")
        return slice(start, max(start, stop))
    if item is None or not hasattr(item, "__index__"):
        raise TypeError(f"buffer indices must be integers or slices, not "
                        f"{type(item).__name__}")
    index = item.__index__()
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError("buffer index out of range")
    return index


# Two forms of MPI.buffer, both defined on every Python (and tested there); ``buffer``
# is the one this Python uses (see the end of the module).

_made: dict[str, Any] = {}   # "array": _ArrayBuffer, or None without numpy
# Made once even when threads ask at once (THREAD_MULTIPLE): two classes named MPI.buffer
# would fail each other's isinstance checks.
_making = threading.RLock()


def _array_buffer() -> Any:
    """``MPI.buffer`` as a ``uint8`` numpy array (None without numpy), made on first use."""
    if "array" in _made:
        return _made["array"]
    with _making:
        if "array" not in _made:
            _made["array"] = _make_array_buffer()
    return _made["array"]


def _make_array_buffer() -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is optional
        return None

    class _ArrayBuffer(_BufferAPI, np.ndarray):
        """``MPI.buffer``: a byte view on memory (a ``uint8`` array on this Python)."""

        __module__ = "shoal.MPI"

        def __new__(cls, obj: Any = _EMPTY) -> Any:
            if obj is _EMPTY:
                return cls._make(None, 0, False)
            view = _raw_view(obj, False)
            return cls._make(obj, view.nbytes, view.readonly)

        @classmethod
        def _make(cls, raw: Any, nbytes: int, readonly: bool) -> Any:
            base = _raw_view(raw if raw is not None else bytearray(), False)
            obj = np.ndarray.__new__(cls, (nbytes,), np.uint8, buffer=base[:nbytes])
            if readonly:
                obj.flags.writeable = False
            obj._obj = raw if not isinstance(raw, ctypes.Array) else None
            obj._from_address = isinstance(raw, ctypes.Array)
            obj._released = False
            return obj

        def __array_finalize__(self, parent: Any) -> None:
            self._obj = getattr(parent, "_obj", None)
            self._from_address = getattr(parent, "_from_address", False)
            self._released = False

        def _bytes(self) -> memoryview:
            array: Any = self.view(np.ndarray)
            return memoryview(array)

        @property
        def nbytes(self) -> int:
            return 0 if self._released else int(np.ndarray.__len__(self))

        @property
        def readonly(self) -> bool:
            return False if self._released else not self.flags.writeable

        def __len__(self) -> int:
            return 0 if self._released else int(np.ndarray.__len__(self))

        def __getitem__(self, item: Any) -> Any:
            self._host()
            return np.ndarray.__getitem__(self, _check_index(item, len(self)))

        def __setitem__(self, item: Any, value: Any) -> None:
            self._host()
            if not self.flags.writeable:
                raise TypeError("cannot modify a read-only MPI.buffer")
            if isinstance(value, _BufferAPI):
                value = np.asarray(value)
            elif not isinstance(value, (int, np.integer)):
                value = np.frombuffer(memoryview(value).cast("B"), dtype=np.uint8)
            np.ndarray.__setitem__(self, _check_index(item, len(self)), value)

        def __delitem__(self, item: Any) -> None:
            raise NotImplementedError("cannot delete items of an MPI.buffer")

        def tobytes(self, order: str | None = None) -> bytes:
            self._host()
            return bytes(self._bytes()) if not self._released else b""

        def release(self) -> None:
            self._released = True

        def __reduce__(self) -> Any:
            return (_buffer_class().frombuffer, (bytearray(self._bytes()),))

    _ArrayBuffer.__name__ = _ArrayBuffer.__qualname__ = "buffer"
    return _ArrayBuffer


class _PlainBuffer(_BufferAPI):
    """``MPI.buffer``: a byte view on memory (Python 3.12+ lends it through __buffer__)."""

    __module__ = "shoal.MPI"
    # (__weakref__ and __dict__ come from _BufferAPI: naming them again is an error)
    __slots__ = ("_obj", "_view", "_released", "_from_address")

    def __init__(self, obj: Any = _EMPTY) -> None:
        self._from_address = False
        if obj is _EMPTY:
            self._obj, self._view, self._released = None, memoryview(bytearray()), False
        else:
            view = _raw_view(obj, False)
            self._obj, self._view, self._released = obj, view, False

    @classmethod
    def _make(cls, raw: Any, nbytes: int, readonly: bool) -> Any:
        obj = cls.__new__(cls)
        view = _raw_view(raw, False)[:nbytes]  # (DLPack and interface objects too)
        obj._view = view.toreadonly() if readonly else view
        obj._obj = raw if not isinstance(raw, ctypes.Array) else None
        obj._from_address = isinstance(raw, ctypes.Array)
        obj._released = False
        return obj

    def _bytes(self) -> memoryview:
        return self._view

    def __buffer__(self, flags: int) -> memoryview:
        return self._view

    @property
    def nbytes(self) -> int:
        return self._view.nbytes

    @property
    def readonly(self) -> bool:
        return self._view.readonly

    def __len__(self) -> int:
        return self._view.nbytes

    def __getitem__(self, item: Any) -> Any:
        self._host()
        index = _check_index(item, len(self))
        if isinstance(index, slice):
            return type(self)._make(self._view[index], index.stop - index.start,
                                self._view.readonly)
        return self._view[index]

    def __setitem__(self, item: Any, value: Any) -> None:
        self._host()
        if self._view.readonly:
            raise TypeError("cannot modify a read-only MPI.buffer")
        index = _check_index(item, len(self))
        if isinstance(index, slice) and isinstance(value, int):
            self._view[index] = bytes([value]) * (index.stop - index.start)
        elif isinstance(index, slice):
            data = _raw_view(value, True)
            if data.nbytes != index.stop - index.start:
                raise ValueError("MPI.buffer slice assignment changes the size")
            self._view[index] = data
        else:
            self._view[index] = value

    def __delitem__(self, item: Any) -> None:
        raise NotImplementedError("cannot delete items of an MPI.buffer")

    def tobytes(self, order: str | None = None) -> bytes:
        self._host()
        return self._view.tobytes()

    def release(self) -> None:
        self._view = memoryview(bytearray())
        self._obj = None
        self._from_address = False
        self._released = True

    def __reduce__(self) -> Any:
        return (_buffer_class().frombuffer, (bytearray(self._view),))


_PlainBuffer.__name__ = _PlainBuffer.__qualname__ = "buffer"


def _buffer_class() -> Any:
    """``MPI.buffer`` on this Python.  Before 3.12 a class written in Python can only lend
    its memory (memoryview(buf), numpy, struct ...) by being an array: numpy's, when it is
    here."""
    return (sys.version_info < (3, 12) and _array_buffer()) or _PlainBuffer


LAZY = frozenset({"buffer", "memory"})   # names made on first use (``MPI.memory`` too)


def __getattr__(name: str) -> Any:
    if name in LAZY:
        return _buffer_class()
    if name == "_ArrayBuffer" and _array_buffer() is not None:
        return _array_buffer()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def Alloc_mem(size: int, info: Any = None) -> Any:
    """Memory for one-sided and buffered communication (here: ordinary memory)."""
    try:
        return _buffer_class().allocate(size)
    except MemoryError:
        raise C.Exception(C.ERR_NO_MEM, f"cannot allocate {size} bytes") from None


def Free_mem(mem: Any) -> None:
    if not isinstance(mem, _BufferAPI):
        raise TypeError(f"expected an MPI.buffer from Alloc_mem, got {type(mem).__name__}")
    mem.release()


def Get_address(location: Any) -> int:
    """The address of a buffer's first byte (``MPI.BOTTOM`` is 0)."""
    if location is None:
        return 0
    if isinstance(location, C._Sentinel):
        return int(location)  # MPI.BOTTOM, MPI.IN_PLACE: their own values
    if isinstance(location, _BufferAPI):
        return location.address
    interface = getattr(location, "__array_interface__", None)
    if isinstance(interface, dict) and "data" in interface:
        return int(interface["data"][0])  # numpy: strided arrays too
    try:
        view = memoryview(location)
    except TypeError:
        from shoal.spmd.foreign import foreign_view

        found = foreign_view(location)
        if found is None:
            raise TypeError(f"expected a buffer, got {type(location).__name__}") from None
        view = found[0]
    if view.nbytes == 0:
        return 0
    from shoal.transport import cma

    if not view.c_contiguous and not view.f_contiguous:
        raise C.BufferErrorException(C.ERR_BUFFER, "Get_address needs a contiguous buffer "
                                     "(or a numpy array)")
    return cma.address(view)


def Aint_add(base: int, disp: int) -> int:
    return int(base) + int(disp)


def Aint_diff(addr1: int, addr2: int) -> int:
    return int(addr1) - int(addr2)


# ``buffer`` and ``memory`` (LAZY) are not here: ``from memory import *`` would make them.
__all__ = ["Alloc_mem", "Free_mem", "Get_address", "Aint_add", "Aint_diff"]
