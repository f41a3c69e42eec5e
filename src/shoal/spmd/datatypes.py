"""MPI datatypes and mpi4py's buffer specifications, without MPI.

A :class:`Datatype` here is a description (size, extent, numpy dtype); the
bytes themselves always travel as a flat ``memoryview``.  The sizes are those
of the C types on this machine (``ctypes``), which is what MPICH reports.
Buffer specifications (``[buf, count, MPI.INT]`` ...) are read in
:mod:`shoal.spmd.buffers`.

numpy is optional: it is imported only by the functions that need it.
"""

from __future__ import annotations

import ctypes
import operator
import struct
import sys
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.constants import (
    TypeErrorException,
    ValueErrorException,
)
from shoal.spmd.handles import Handle

# What a Datatype is made of, as far as reductions care.
#   int/uint/char: C integers (MPICH treats char as an integer)
#   float, complex, bool: what they say      byte: MPI_BYTE (bit-wise ops only)
#   pair: value-index structs for MAXLOC/MINLOC
#   wchar, packed: no arithmetic             null: DATATYPE_NULL
CATEGORIES = ("int", "uint", "char", "float", "complex", "bool", "byte", "pair",
              "wchar", "packed", "null")

_BYTE_ORDER_MARK = "<" if sys.byteorder == "little" else ">"


class _TypeInfo:
    """The shared "handle" behind Datatype objects (equal Datatypes share one)."""

    def __init__(self, name: str, size: int, extent: int, category: str, *,
                 typechar: str = "", typestr: str = "", np_spec: Any = None,
                 base: _TypeInfo | None = None, repeat: int = 1,
                 predefined: bool = False, committed: bool = True,
                 pyname: str = "") -> None:
        self.name = name
        self.size = size
        self.extent = extent
        self.category = category
        self.typechar = typechar
        self.typestr = typestr
        self.np_spec = np_spec  # anything np.dtype() accepts
        self.base = base  # element type of a derived contiguous type
        self.repeat = repeat  # base elements per element of this type
        self.predefined = predefined
        self.committed = committed
        self.pyname = pyname

    def leaf(self) -> _TypeInfo:
        """The predefined type this one is made of (itself when predefined)."""
        return self.base.leaf() if self.base is not None else self

    def leaf_count(self) -> int:
        """How many elements of :meth:`leaf` one element of this type holds."""
        return self.repeat * self.base.leaf_count() if self.base is not None else 1


_NULL_INFO = _TypeInfo("MPI_DATATYPE_NULL", 0, 0, "null", predefined=True,
                       pyname="DATATYPE_NULL")


class Datatype(Handle[_TypeInfo]):
    """``MPI.Datatype``: predefined types, duplicates and contiguous types."""

    __slots__ = ()
    _NULL = _NULL_INFO

    def __init__(self, datatype: Datatype | None = None) -> None:
        self._info: _TypeInfo = datatype._info if datatype is not None else _NULL_INFO

    def __repr__(self) -> str:
        return f"<MPI.Datatype {self._info.name or 'derived'}>"

    def __reduce__(self) -> tuple[Any, ...]:
        info = self._info
        if info.predefined:
            return (_predefined, (info.pyname,))
        assert info.base is not None
        return (_rebuild_contiguous, (_predefined(info.leaf().pyname), info.leaf_count(),
                                      info.committed, info.name))

    def _checked(self) -> _TypeInfo:
        if self._info is _NULL_INFO:
            raise C.Exception(C.ERR_TYPE, "the datatype is MPI.DATATYPE_NULL (or was freed)")
        return self._info

    # -- sizes
    def Get_size(self) -> int:
        return self._checked().size

    @property
    def size(self) -> int:
        return self.Get_size()

    def Get_extent(self) -> tuple[int, int]:
        """``(lb, extent)``; shoal's types all have a lower bound of 0."""
        return 0, self._checked().extent

    @property
    def extent(self) -> int:
        return self._checked().extent

    @property
    def lb(self) -> int:
        self._checked()
        return 0

    @property
    def ub(self) -> int:
        return self._checked().extent

    def Get_true_extent(self) -> tuple[int, int]:
        return self.Get_extent()

    @property
    def true_extent(self) -> int:
        return self.extent

    @property
    def true_lb(self) -> int:
        return self.lb

    @property
    def true_ub(self) -> int:
        return self.ub

    # -- names and codes
    def Get_name(self) -> str:
        return self._info.name

    def Set_name(self, name: str) -> None:
        self._checked().name = str(name)

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def typechar(self) -> str:
        return self._info.typechar

    @property
    def typestr(self) -> str:
        return self._info.typestr

    def tocode(self) -> str:
        if not self._info.typechar or self._info.category == "pair":
            raise ValueErrorException(C.ERR_TYPE,
                                      "cannot map to character code or type string")
        return self._info.typechar

    @classmethod
    def fromcode(cls, code: str) -> Datatype:
        try:
            return _typedict[code]
        except (KeyError, TypeError):
            raise ValueErrorException(C.ERR_TYPE,
                                      f"cannot map code {code!r} to MPI datatype") from None

    @classmethod
    def from_numpy(cls, dtype: Any) -> Datatype:
        """The predefined Datatype of a numpy dtype, scalar type or type code."""
        if isinstance(dtype, str) and dtype in _typedict:
            return _typedict[dtype]
        import numpy as np

        try:
            npdt = np.dtype(dtype)
        except TypeError:
            raise ValueErrorException(C.ERR_TYPE, f"{dtype!r} is not a numpy dtype") from None
        found = _from_numpy_dtype(npdt)
        if found is None:
            raise ValueErrorException(C.ERR_TYPE, f"no MPI datatype matches numpy dtype {npdt}")
        return found

    @property
    def is_predefined(self) -> bool:
        return self._info.predefined

    @property
    def is_named(self) -> bool:
        return self._info.predefined and self._info is not _NULL_INFO

    @property
    def category(self) -> str:
        """shoal's own: what reductions may do with it (see ``CATEGORIES``)."""
        return self._info.leaf().category

    @property
    def committed(self) -> bool:
        return self._info.committed

    # -- numpy
    @property
    def numpy_dtype(self) -> Any:
        """The numpy dtype of one element (pair types are aligned structs)."""
        import numpy as np

        info = self._checked()
        if info.base is not None:
            return np.dtype((Datatype._wrap(info.base).numpy_dtype, (info.repeat,)))
        if info.np_spec is None:
            raise C.Exception(C.ERR_TYPE, f"{info.name} has no numpy equivalent")
        return np.dtype(info.np_spec)

    # -- constructors and life cycle
    def Dup(self) -> Datatype:
        info = self._checked()
        copy = _TypeInfo("" if info.predefined else info.name, info.size, info.extent,
                         info.category, typechar=info.typechar, typestr=info.typestr,
                         np_spec=info.np_spec, base=info.base, repeat=info.repeat,
                         committed=info.committed)
        if info.predefined:  # a dup of a predefined type is a contiguous type of 1
            copy.base, copy.repeat = info, 1
        return Datatype._wrap(copy)

    Create_dup = Dup

    def Create_contiguous(self, count: int) -> Datatype:
        info = self._checked()
        count = operator.index(count)
        if count < 0:
            raise ValueErrorException(C.ERR_COUNT, f"negative count {count}")
        leaf = info.leaf()
        return Datatype._wrap(_TypeInfo(
            "", info.size * count, info.extent * count, leaf.category,
            typechar="V", typestr=f"V{info.extent * count}", base=info, repeat=count,
            committed=False))

    def Commit(self) -> Datatype:
        self._checked().committed = True
        return self

    def Free(self) -> None:
        info = self._checked()
        if info.predefined:
            raise C.Exception(C.ERR_TYPE, f"cannot free the predefined datatype {info.name}")
        self._info = _NULL_INFO

    def free(self) -> None:
        """Free unless null or predefined (mpi4py's lower-case ``free``)."""
        if self and not self._info.predefined:
            self.Free()


def _rebuild_contiguous(base: Datatype, count: int, committed: bool, name: str) -> Datatype:
    derived = base.Create_contiguous(count)
    if committed:
        derived.Commit()
    derived._info.name = name
    return derived


# -- the predefined types ------------------------------------------------------

_predefined_by_name: dict[str, Datatype] = {"DATATYPE_NULL": Datatype._wrap(_NULL_INFO)}


def _predefined(pyname: str) -> Datatype:
    return _predefined_by_name[pyname]


def _define(pyname: str, cname: str, ctype: Any, category: str, typechar: str,
            np_spec: Any = None) -> Datatype:
    size = ctypes.sizeof(ctype)
    prefix = {"int": "i", "uint": "u", "float": "f", "complex": "c", "bool": "b",
              "byte": "u", "packed": "u", "char": "S", "wchar": "U"}[category]
    typestr = f"{prefix}{1 if category in ('char', 'wchar') else size}"
    info = _TypeInfo(cname, size, size, category, typechar=typechar, typestr=typestr,
                     np_spec=np_spec if np_spec is not None else typestr,
                     predefined=True, pyname=pyname)
    dt = Datatype._wrap(info)
    _predefined_by_name[pyname] = dt
    return dt


def _define_pair(pyname: str, cname: str, ctype: Any, value_np: str) -> Datatype:
    class _Pair(ctypes.Structure):
        _fields_ = [("value", ctype), ("index", ctypes.c_int)]

    size = ctypes.sizeof(ctype) + ctypes.sizeof(ctypes.c_int)
    extent = ctypes.sizeof(_Pair)
    np_spec = {"names": ["value", "index"], "formats": [value_np, "i4"],
               "offsets": [0, _Pair.index.offset], "itemsize": extent, "aligned": True}
    info = _TypeInfo(cname, size, extent, "pair", typechar="V", typestr=f"V{extent}",
                     np_spec=np_spec, predefined=True, pyname=pyname)
    dt = Datatype._wrap(info)
    _predefined_by_name[pyname] = dt
    return dt


class _FloatComplex(ctypes.Structure):
    _fields_ = [("re", ctypes.c_float), ("im", ctypes.c_float)]


class _DoubleComplex(ctypes.Structure):
    _fields_ = [("re", ctypes.c_double), ("im", ctypes.c_double)]


class _LongDoubleComplex(ctypes.Structure):
    _fields_ = [("re", ctypes.c_longdouble), ("im", ctypes.c_longdouble)]


DATATYPE_NULL = _predefined_by_name["DATATYPE_NULL"]
PACKED = _define("PACKED", "MPI_PACKED", ctypes.c_ubyte, "packed", "B")
BYTE = _define("BYTE", "MPI_BYTE", ctypes.c_ubyte, "byte", "B")
AINT = _define("AINT", "MPI_AINT", ctypes.c_ssize_t, "int", "p")
OFFSET = _define("OFFSET", "MPI_OFFSET", ctypes.c_longlong, "int", "p")
COUNT = _define("COUNT", "MPI_COUNT", ctypes.c_longlong, "int", "p")
CHAR = _define("CHAR", "MPI_CHAR", ctypes.c_char, "char", "c")
WCHAR = _define("WCHAR", "MPI_WCHAR", ctypes.c_wchar, "wchar", "U")
SIGNED_CHAR = _define("SIGNED_CHAR", "MPI_SIGNED_CHAR", ctypes.c_byte, "int", "b")
SHORT = _define("SHORT", "MPI_SHORT", ctypes.c_short, "int", "h")
INT = _define("INT", "MPI_INT", ctypes.c_int, "int", "i")
LONG = _define("LONG", "MPI_LONG", ctypes.c_long, "int", "l")
LONG_LONG = _define("LONG_LONG", "MPI_LONG_LONG_INT", ctypes.c_longlong, "int", "q")
UNSIGNED_CHAR = _define("UNSIGNED_CHAR", "MPI_UNSIGNED_CHAR", ctypes.c_ubyte, "uint", "B")
UNSIGNED_SHORT = _define("UNSIGNED_SHORT", "MPI_UNSIGNED_SHORT", ctypes.c_ushort, "uint", "H")
UNSIGNED = _define("UNSIGNED", "MPI_UNSIGNED", ctypes.c_uint, "uint", "I")
UNSIGNED_LONG = _define("UNSIGNED_LONG", "MPI_UNSIGNED_LONG", ctypes.c_ulong, "uint", "L")
UNSIGNED_LONG_LONG = _define("UNSIGNED_LONG_LONG", "MPI_UNSIGNED_LONG_LONG",
                             ctypes.c_ulonglong, "uint", "Q")
FLOAT = _define("FLOAT", "MPI_FLOAT", ctypes.c_float, "float", "f")
DOUBLE = _define("DOUBLE", "MPI_DOUBLE", ctypes.c_double, "float", "d")
LONG_DOUBLE = _define("LONG_DOUBLE", "MPI_LONG_DOUBLE", ctypes.c_longdouble, "float", "g",
                      np_spec="g")
C_BOOL = _define("C_BOOL", "MPI_C_BOOL", ctypes.c_bool, "bool", "?")
INT8_T = _define("INT8_T", "MPI_INT8_T", ctypes.c_int8, "int", "b")
INT16_T = _define("INT16_T", "MPI_INT16_T", ctypes.c_int16, "int", "h")
INT32_T = _define("INT32_T", "MPI_INT32_T", ctypes.c_int32, "int", "i")
INT64_T = _define("INT64_T", "MPI_INT64_T", ctypes.c_int64, "int", "l")
UINT8_T = _define("UINT8_T", "MPI_UINT8_T", ctypes.c_uint8, "uint", "B")
UINT16_T = _define("UINT16_T", "MPI_UINT16_T", ctypes.c_uint16, "uint", "H")
UINT32_T = _define("UINT32_T", "MPI_UINT32_T", ctypes.c_uint32, "uint", "I")
UINT64_T = _define("UINT64_T", "MPI_UINT64_T", ctypes.c_uint64, "uint", "L")
C_FLOAT_COMPLEX = _define("C_FLOAT_COMPLEX", "MPI_C_COMPLEX", _FloatComplex, "complex", "F")
C_DOUBLE_COMPLEX = _define("C_DOUBLE_COMPLEX", "MPI_C_DOUBLE_COMPLEX", _DoubleComplex,
                           "complex", "D")
C_LONG_DOUBLE_COMPLEX = _define("C_LONG_DOUBLE_COMPLEX", "MPI_C_LONG_DOUBLE_COMPLEX",
                                _LongDoubleComplex, "complex", "G", np_spec="G")
CXX_BOOL = _define("CXX_BOOL", "MPI_CXX_BOOL", ctypes.c_bool, "bool", "?")
# Fortran's COMPLEX and DOUBLE COMPLEX, which mpi4py also exports.
COMPLEX = _define("COMPLEX", "MPI_COMPLEX", _FloatComplex, "complex", "F")
DOUBLE_COMPLEX = _define("DOUBLE_COMPLEX", "MPI_DOUBLE_COMPLEX", _DoubleComplex, "complex", "D")

SHORT_INT = _define_pair("SHORT_INT", "MPI_SHORT_INT", ctypes.c_short, "i2")
TWOINT = _define_pair("TWOINT", "MPI_2INT", ctypes.c_int, "i4")
LONG_INT = _define_pair("LONG_INT", "MPI_LONG_INT", ctypes.c_long, "i8")
FLOAT_INT = _define_pair("FLOAT_INT", "MPI_FLOAT_INT", ctypes.c_float, "f4")
DOUBLE_INT = _define_pair("DOUBLE_INT", "MPI_DOUBLE_INT", ctypes.c_double, "f8")
LONG_DOUBLE_INT = _define_pair("LONG_DOUBLE_INT", "MPI_LONG_DOUBLE_INT",
                               ctypes.c_longdouble, "g")

# Aliases: the same handle under a second name, as in mpi4py.
BOOL = C_BOOL
C_COMPLEX = C_FLOAT_COMPLEX
INT_INT = TWOINT
FLOAT32_T = FLOAT
FLOAT64_T = DOUBLE

#: mpi4py's ``MPI._typedict``: buffer format / numpy type code -> Datatype.
_typedict: dict[str, Datatype] = {
    "?": C_BOOL, "b1": C_BOOL,
    "c": CHAR, "S": CHAR, "S1": CHAR, "a": CHAR, "s": CHAR, "1s": CHAR,
    "U": WCHAR, "U1": WCHAR, "w": WCHAR, "1w": WCHAR,
    "b": SIGNED_CHAR, "h": SHORT, "i": INT, "l": LONG, "q": LONG_LONG,
    "B": UNSIGNED_CHAR, "H": UNSIGNED_SHORT, "I": UNSIGNED, "L": UNSIGNED_LONG,
    "Q": UNSIGNED_LONG_LONG,
    "p": AINT, "n": COUNT, "P": UNSIGNED_LONG, "N": UNSIGNED_LONG,
    "i1": INT8_T, "i2": INT16_T, "i4": INT32_T, "i8": INT64_T,
    "u1": UINT8_T, "u2": UINT16_T, "u4": UINT32_T, "u8": UINT64_T, "u": UINT16_T,
    "m": INT64_T, "m8": INT64_T, "M": INT64_T, "M8": INT64_T,
    "f": FLOAT, "d": DOUBLE, "g": LONG_DOUBLE,
    "f4": FLOAT, "f8": DOUBLE, "f16": LONG_DOUBLE,
    "F": C_FLOAT_COMPLEX, "D": C_DOUBLE_COMPLEX, "G": C_LONG_DOUBLE_COMPLEX,
    "Zf": C_FLOAT_COMPLEX, "Zd": C_DOUBLE_COMPLEX, "Zg": C_LONG_DOUBLE_COMPLEX,
    "c8": C_FLOAT_COMPLEX, "c16": C_DOUBLE_COMPLEX, "c32": C_LONG_DOUBLE_COMPLEX,
}

_PAIRS = (SHORT_INT, TWOINT, LONG_INT, FLOAT_INT, DOUBLE_INT, LONG_DOUBLE_INT)


def _from_numpy_dtype(npdt: Any) -> Datatype | None:
    """Predefined Datatype for a native numpy dtype, pair structs included."""
    if npdt.names is not None:
        for pair in _PAIRS:
            want = pair.numpy_dtype
            if (npdt.itemsize == want.itemsize and len(npdt.names) == 2
                    and [f[0] for f in npdt.fields.values()] == [f[0] for f in want.fields.values()]
                    and [f[1] for f in npdt.fields.values()]
                    == [f[1] for f in want.fields.values()]):
                return pair
        return None
    if npdt.byteorder not in ("=", "|", _BYTE_ORDER_MARK) or npdt.subdtype is not None:
        return None
    if npdt.kind in "SU" and npdt.itemsize != (1 if npdt.kind == "S" else 4):
        return None
    return _typedict.get(npdt.char)


def to_datatype(datatype: Datatype | str) -> Datatype:
    """A Datatype given as an object or as a type code such as ``"d"``."""
    if isinstance(datatype, Datatype):
        return datatype
    if isinstance(datatype, str):
        try:
            return _typedict[datatype]
        except KeyError:
            raise ValueErrorException(C.ERR_TYPE, f"cannot map {datatype!r} to MPI datatype: "
                                      "use an MPI datatype such as MPI.DOUBLE or a "
                                      "type code such as 'd'") from None
    raise TypeErrorException(C.ERR_TYPE, f"expected an MPI.Datatype or a type code, "
                             f"got {type(datatype).__name__}")


def struct_format(datatype: Datatype) -> str | None:
    """The ``memoryview.cast`` format of a predefined type, if it has one.

    Used where numpy is missing: reductions then run on typed memoryviews.
    """
    info = datatype._info.leaf()
    size = info.size
    if info.category in ("int", "char"):
        return {1: "b", 2: "h", 4: "i", 8: "q"}.get(size)
    if info.category in ("uint", "byte"):
        return {1: "B", 2: "H", 4: "I", 8: "Q"}.get(size)
    if info.category == "float":
        return {4: "f", 8: "d"}.get(size)
    if info.category == "bool" and size == struct.calcsize("?"):
        return "?"
    return None


def as_numpy(view: memoryview, datatype: Datatype) -> Any:
    """A numpy array over ``view`` (no copy) of the predefined elements of
    ``datatype``: a contiguous type of 3 doubles gives 3 doubles per element.
    Writable when ``view`` is."""
    try:
        import numpy as np
    except ImportError:
        raise C.Exception(C.ERR_OTHER, "numpy is needed for this: pip install numpy") from None
    info = datatype._checked()
    dtype = _NUMPY_LEAF.get(info)
    if dtype is None:
        dtype = _NUMPY_LEAF[info] = Datatype._wrap(info.leaf()).numpy_dtype
    return np.frombuffer(view, dtype=dtype)


# The numpy element type of each datatype, found once: reductions ask per call.
_NUMPY_LEAF: dict[Any, Any] = {}


# Only the names mpi4py's MPI module has: ``shoal.spmd.mpi`` star-imports this.
# as_numpy, to_datatype and struct_format are for
# shoal's own layers and are imported by name.
__all__ = [
    "Datatype", "_typedict",
    "DATATYPE_NULL", "PACKED", "BYTE", "AINT", "OFFSET", "COUNT", "CHAR", "WCHAR",
    "SIGNED_CHAR", "SHORT", "INT", "LONG", "LONG_LONG", "UNSIGNED_CHAR", "UNSIGNED_SHORT",
    "UNSIGNED", "UNSIGNED_LONG", "UNSIGNED_LONG_LONG", "FLOAT", "DOUBLE", "LONG_DOUBLE",
    "C_BOOL", "BOOL", "CXX_BOOL", "INT8_T", "INT16_T", "INT32_T", "INT64_T", "UINT8_T",
    "UINT16_T", "UINT32_T", "UINT64_T", "FLOAT32_T", "FLOAT64_T",
    "C_COMPLEX", "C_FLOAT_COMPLEX", "C_DOUBLE_COMPLEX", "C_LONG_DOUBLE_COMPLEX",
    "COMPLEX", "DOUBLE_COMPLEX",
    "SHORT_INT", "TWOINT", "INT_INT", "LONG_INT", "FLOAT_INT", "DOUBLE_INT", "LONG_DOUBLE_INT",
]
