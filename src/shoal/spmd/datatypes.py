"""``MPI.Datatype``: the predefined types, the derived-type constructors, type codes.

A :class:`Datatype` is a handle (see :mod:`shoal.spmd.handles`) on a
:class:`~shoal.spmd.derived.TypeInfo` record, which holds the type map (see
:mod:`shoal.spmd.derived`).  The predefined types, their names, sizes, type
characters, type strings and alignments are MPICH's as mpi4py reports them on
this machine (``ctypes`` sizes); the few Fortran types MPICH's wheel leaves out
(``LOGICAL1/2/4/8/16``, ``INTEGER16``, ``REAL2``, ``COMPLEX4``, ``BFLOAT16_T``)
are ``DATATYPE_NULL`` here too.  Buffer specifications (``[buf, count,
MPI.INT]`` ...) are read in :mod:`shoal.spmd.buffers`.

numpy is optional: it is imported only by the functions that need it.
"""

from __future__ import annotations

import ctypes
import struct as _struct
import sys
from collections.abc import Sequence
from typing import Any

from shoal.spmd import attrs
from shoal.spmd import constants as C
from shoal.spmd import derived as D
from shoal.spmd.constants import TypeErrorException, ValueErrorException
from shoal.spmd.derived import TypeInfo
from shoal.spmd.handles import Handle, is_named

# What a Datatype is made of, as far as reductions care.
#   int/uint/char: C integers (MPICH treats char as an integer)
#   float, complex, bool: what they say      byte: MPI_BYTE (bit-wise ops only)
#   pair: value-index structs for MAXLOC/MINLOC
#   wchar, packed: no arithmetic             null: DATATYPE_NULL
#   mixed: a derived type of several leaf types (no reductions)
CATEGORIES = ("int", "uint", "char", "float", "complex", "bool", "byte", "pair",
              "wchar", "packed", "null", "mixed")

_BYTE_ORDER_MARK = "<" if sys.byteorder == "little" else ">"

_NULL_INFO = TypeInfo("MPI_DATATYPE_NULL", category="null", predefined=True)
_TypeInfo = TypeInfo  # the record's former name, for shoal's other layers


class Datatype(Handle):
    """``MPI.Datatype``."""

    __slots__ = ()
    __module__ = "shoal.MPI"
    _NULL = _NULL_INFO
    _info: TypeInfo

    def __repr__(self) -> str:
        info = self._info
        return f"<MPI.Datatype {info.name or D.COMBINER_NAMES.get(info.combiner, 'derived')}>"

    def _checked(self) -> TypeInfo:
        if self._info is _NULL_INFO:
            raise C.Exception(C.ERR_TYPE, "the datatype is MPI.DATATYPE_NULL (or was freed)")
        return self._info

    def _predefined(self) -> bool:
        return bool(self._info.predefined)

    def _reduce_created(self) -> tuple[Any, ...]:
        basetype, combiner, params = self.decode()
        return (_datatype_create, (basetype, combiner, params, True))

    # -- sizes and bounds ---------------------------------------------------------

    def Get_size(self) -> int:
        return self._checked().size

    @property
    def size(self) -> int:
        return self._checked().size

    def Get_extent(self) -> tuple[int, int]:
        info = self._checked()
        return info.lb, info.extent

    @property
    def extent(self) -> int:
        return self._checked().extent

    @property
    def lb(self) -> int:
        return self._checked().lb

    @property
    def ub(self) -> int:
        return self._checked().ub

    def Get_true_extent(self) -> tuple[int, int]:
        info = self._checked()
        return info.true_lb, info.true_ub - info.true_lb

    @property
    def true_extent(self) -> int:
        info = self._checked()
        return info.true_ub - info.true_lb

    @property
    def true_lb(self) -> int:
        return self._checked().true_lb

    @property
    def true_ub(self) -> int:
        return self._checked().true_ub

    # -- names and codes ------------------------------------------------------------

    def Get_name(self) -> str:
        return self._info.name

    def Set_name(self, name: str) -> None:
        self._checked().name = str(name)

    @property
    def name(self) -> str:
        return self._info.name

    @name.setter
    def name(self, value: str) -> None:
        self.Set_name(value)

    @property
    def typechar(self) -> str:
        info = self._info
        return "" if info is _NULL_INFO else (info.typechar or "V")

    @property
    def typestr(self) -> str:
        info = self._info
        if info is _NULL_INFO:
            return ""
        return info.typestr or f"V{info.extent}"

    def tocode(self) -> str:
        code = self._info.code
        if not code:
            raise ValueErrorException(C.ERR_TYPE, "cannot map to character code or type string")
        return code

    @classmethod
    def fromcode(cls, code: str) -> Datatype:
        try:
            return _typedict[code]
        except (KeyError, TypeError):
            raise ValueErrorException(C.ERR_TYPE,
                                      f"cannot map code {code!r} to MPI datatype") from None

    @classmethod
    def from_numpy(cls, dtype: Any) -> Datatype:
        """shoal's own: the predefined Datatype of a numpy dtype, scalar type or code."""
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

    # -- what kind of type ----------------------------------------------------------

    def Get_envelope(self) -> tuple[int, int, int, int, int]:
        return D.envelope(self._checked())

    @property
    def envelope(self) -> tuple[int, int, int, int, int]:
        return self.Get_envelope()

    def Get_contents(self) -> tuple[list[int], list[int], list[int], list[Datatype]]:
        info = self._checked()
        if info.combiner == D.COMBINER_NAMED:
            raise C.Exception(C.ERR_ARG, "a named datatype has no contents")
        ints, addrs, counts, types = info.contents
        return list(ints), list(addrs), list(counts), [_handle(t) for t in types]

    @property
    def contents(self) -> tuple[list[int], list[int], list[int], list[Datatype]]:
        return self.Get_contents()

    @property
    def combiner(self) -> int:
        return self._checked().combiner

    def decode(self) -> tuple[Datatype, str, dict[str, Any]]:
        info = self._checked()
        name = D.COMBINER_NAMES[info.combiner]
        if info.combiner == D.COMBINER_NAMED:
            return self, name, {}
        params = D.decode_params(info)
        types = info.contents[3]
        if info.combiner == D.COMBINER_STRUCT:
            params["datatypes"] = [_handle(t) for t in params["datatypes"]]
            return DATATYPE_NULL, name, params
        if info.combiner == D.COMBINER_VALUE_INDEX:
            params = {"value": _handle(types[0]), "index": _handle(types[1])}
            return DATATYPE_NULL, name, params
        if not types:
            return DATATYPE_NULL, name, params
        return _handle(types[0]), name, params

    @property
    def is_predefined(self) -> bool:
        return bool(self._info.predefined)

    @property
    def is_named(self) -> bool:
        info = self._info
        return info is not _NULL_INFO and info.combiner == D.COMBINER_NAMED

    @property
    def category(self) -> str:
        """shoal's own: what reductions may do with it (see ``CATEGORIES``)."""
        return str(self._info.category)

    @property
    def committed(self) -> bool:
        """shoal's own: whether the type may be used to communicate."""
        return bool(self._info.committed)

    # -- numpy ------------------------------------------------------------------------

    @property
    def numpy_dtype(self) -> Any:
        """shoal's own: the numpy dtype of one element, for predefined types and
        contiguous runs of one (pair types are aligned structs)."""
        import numpy as np

        info = self._checked()
        if info.np_spec is not None:
            return np.dtype(info.np_spec)
        leaf = info.leaf
        if leaf is not None and info.contiguous and leaf.np_spec is not None:
            return np.dtype((np.dtype(leaf.np_spec), (info.leaf_count,)))
        raise C.Exception(C.ERR_TYPE, f"{info.name or 'this derived datatype'} has no "
                          "simple numpy equivalent (mpi4py.util.dtlib converts any)")

    # -- constructors ------------------------------------------------------------------

    def _new(self, info: TypeInfo) -> Datatype:
        return type(self)._wrap(info)

    def Dup(self) -> Datatype:
        info = self._checked()
        copied = attrs.copy_attrs(self, info.attrs) if info.attrs else None
        new = D.dup(info)
        if copied:
            new.attrs = copied
        return self._new(new)

    Create_dup = Dup

    def Create_contiguous(self, count: int) -> Datatype:
        return self._new(D.contiguous(self._checked(), count))

    def Create_vector(self, count: int, blocklength: int, stride: int) -> Datatype:
        return self._new(D.hvector(self._checked(), count, blocklength, stride, elements=True))

    def Create_hvector(self, count: int, blocklength: int, stride: int) -> Datatype:
        return self._new(D.hvector(self._checked(), count, blocklength, stride, elements=False))

    def Create_indexed(self, blocklengths: Sequence[int],
                       displacements: Sequence[int]) -> Datatype:
        return self._new(D.hindexed(self._checked(), blocklengths, displacements,
                                    elements=True))

    def Create_hindexed(self, blocklengths: Sequence[int],
                        displacements: Sequence[int]) -> Datatype:
        return self._new(D.hindexed(self._checked(), blocklengths, displacements,
                                    elements=False))

    def Create_indexed_block(self, blocklength: int,
                             displacements: Sequence[int]) -> Datatype:
        return self._new(D.hindexed_block(self._checked(), blocklength, displacements,
                                          elements=True))

    def Create_hindexed_block(self, blocklength: int,
                              displacements: Sequence[int]) -> Datatype:
        return self._new(D.hindexed_block(self._checked(), blocklength, displacements,
                                          elements=False))

    @classmethod
    def Create_struct(cls, blocklengths: Sequence[int], displacements: Sequence[int],
                      datatypes: Sequence[Datatype]) -> Datatype:
        types = [to_datatype(t)._checked() for t in datatypes]
        return cls._wrap(D.struct(blocklengths, displacements, types))

    def Create_subarray(self, sizes: Sequence[int], subsizes: Sequence[int],
                        starts: Sequence[int], order: int = D.ORDER_C) -> Datatype:
        return self._new(D.subarray(self._checked(), sizes, subsizes, starts, order))

    def Create_darray(self, size: int, rank: int, gsizes: Sequence[int],
                      distribs: Sequence[int], dargs: Sequence[int], psizes: Sequence[int],
                      order: int = D.ORDER_C) -> Datatype:
        return self._new(D.darray(self._checked(), size, rank, gsizes, distribs, dargs,
                                  psizes, order))

    def Create_resized(self, lb: int, extent: int) -> Datatype:
        return self._new(D.resized(self._checked(), lb, extent))

    Resized = Create_resized

    @classmethod
    def Get_value_index(cls, value: Datatype, index: Datatype) -> Datatype:
        """The MAXLOC/MINLOC pair type of ``value`` and ``index`` (``DATATYPE_NULL``
        for combinations MPI does not predefine)."""
        value_info, index_info = value._info, index._info
        if value_info is _NULL_INFO or index_info is _NULL_INFO:
            raise C.Exception(C.ERR_TYPE, "Get_value_index: MPI.DATATYPE_NULL is not a "
                              "value or index type")
        if index_info is INT._info:
            pairs = {"SHORT": SHORT_INT, "INT": TWOINT, "LONG": LONG_INT, "FLOAT": FLOAT_INT,
                     "DOUBLE": DOUBLE_INT, "LONG_DOUBLE": LONG_DOUBLE_INT}
            for name, pair in pairs.items():
                if value_info is _predefined_by_name[name]._info:
                    return pair
        return DATATYPE_NULL

    @classmethod
    def Create_f90_integer(cls, r: int) -> Datatype:
        for limit, name in ((2, "INTEGER1"), (4, "INTEGER2"), (9, "INTEGER4"),
                            (18, "INTEGER8")):
            if r <= limit:
                return cls._wrap(_f90(name, D.COMBINER_F90_INTEGER, [r], {"r": r}))
        raise C.Exception(C.ERR_ARG, f"no integer kind has {r} decimal digits")

    @classmethod
    def Create_f90_real(cls, p: int, r: int) -> Datatype:
        for pmax, rmax, name in ((6, 37, "REAL4"), (15, 307, "REAL8")):
            if p <= pmax and r <= rmax:
                return cls._wrap(_f90(name, D.COMBINER_F90_REAL, [p, r], {"p": p, "r": r}))
        raise C.Exception(C.ERR_ARG, f"no real kind has precision {p} and range {r}")

    @classmethod
    def Create_f90_complex(cls, p: int, r: int) -> Datatype:
        for pmax, rmax, name in ((6, 37, "COMPLEX8"), (15, 307, "COMPLEX16")):
            if p <= pmax and r <= rmax:
                return cls._wrap(_f90(name, D.COMBINER_F90_COMPLEX, [p, r],
                                      {"p": p, "r": r}))
        raise C.Exception(C.ERR_ARG, f"no complex kind has precision {p} and range {r}")

    @classmethod
    def Match_size(cls, typeclass: int, size: int) -> Datatype:
        prefix = {C.TYPECLASS_INTEGER: "INTEGER", C.TYPECLASS_REAL: "REAL",
                  C.TYPECLASS_COMPLEX: "COMPLEX"}.get(typeclass)
        if prefix is not None:
            found = _predefined_by_name.get(f"{prefix}{size}")
            if found:
                return found
        raise C.Exception(C.ERR_ARG, f"no predefined type of class {typeclass} has "
                          f"size {size}")

    # -- attributes ------------------------------------------------------------------

    def _attrs(self) -> dict[int, Any]:
        return self._checked().attrs

    def Get_attr(self, keyval: int) -> Any:
        return attrs.get_attr(self._attrs(), keyval)

    def Set_attr(self, keyval: int, attrval: Any) -> None:
        attrs.set_attr(self, self._attrs(), keyval, attrval)

    def Delete_attr(self, keyval: int) -> None:
        attrs.delete_attr(self, self._attrs(), keyval)

    @classmethod
    def Create_keyval(cls, copy_fn: Any = None, delete_fn: Any = None,
                      nopython: bool = False) -> int:
        return attrs.create_keyval(copy_fn, delete_fn, nopython)

    @classmethod
    def Free_keyval(cls, keyval: int) -> int:
        return attrs.free_keyval(keyval)

    # -- life cycle ------------------------------------------------------------------

    def Commit(self) -> Datatype:
        self._checked().committed = True
        return self

    def Free(self) -> None:
        info = self._checked()
        if info.predefined:
            raise C.Exception(C.ERR_TYPE, f"cannot free the predefined datatype "
                              f"{info.name or 'MPI_' + D.COMBINER_NAMES[info.combiner]}")
        if info.attrs:
            attrs.delete_all(self, info.attrs)
        self._info = _NULL_INFO

    # -- packing --------------------------------------------------------------------

    def Pack(self, inbuf: Any, outbuf: Any, position: int, comm: Any) -> int:
        from shoal.spmd.pack import pack_into

        return pack_into(self, inbuf, outbuf, position)

    def Unpack(self, inbuf: Any, position: int, outbuf: Any, comm: Any) -> int:
        from shoal.spmd.pack import unpack_from

        return unpack_from(self, inbuf, position, outbuf)

    def Pack_size(self, count: int, comm: Any) -> int:
        from shoal.spmd.pack import pack_size

        return pack_size(self, count)

    def Pack_external(self, datarep: str, inbuf: Any, outbuf: Any, position: int) -> int:
        from shoal.spmd.pack import check_datarep, pack_into

        check_datarep(datarep)
        return pack_into(self, inbuf, outbuf, position, external=True)

    def Unpack_external(self, datarep: str, inbuf: Any, position: int, outbuf: Any) -> int:
        from shoal.spmd.pack import check_datarep, unpack_from

        check_datarep(datarep)
        return unpack_from(self, inbuf, position, outbuf, external=True)

    def Pack_external_size(self, datarep: str, count: int) -> int:
        from shoal.spmd.pack import check_datarep, pack_size

        check_datarep(datarep)
        return pack_size(self, count, external=True)


Datatype._FAMILY = Datatype


def _handle(info: TypeInfo) -> Datatype:
    """A wrapper for a type of a derived type's contents (the constant if named)."""
    if is_named(info):
        from shoal.spmd.handles import _named

        return _named[info.handle][0]
    return Datatype._wrap(info)


def _f90(name: str, combiner: int, ints: list[int], params: dict[str, int]) -> TypeInfo:
    base = _predefined_by_name[name]._info
    return TypeInfo(size=base.size, lb=0, ub=base.extent, category=base.category,
                    typechar=base.typechar, typestr=base.typestr, code=base.code,
                    np_spec=base.np_spec, align=base.align, combiner=combiner, params=params,
                    contents=(ints, [], [], []), predefined=True, leaf=base)


def _datatype_create(datatype: Datatype, combiner: str, params: dict[str, Any],
                     free: bool = False) -> Datatype:
    """``MPI._datatype_create``: rebuild a type from its :meth:`Datatype.decode`."""
    combiner = combiner.lower()
    if combiner == "value_index":
        return Datatype.Get_value_index(params["value"], params["index"])
    if combiner in ("f90_integer", "f90_real", "f90_complex"):
        factory = getattr(Datatype, f"Create_{combiner}")
        return factory(**params)
    base = Datatype if combiner == "struct" else datatype
    factory = getattr(base, f"Create_{combiner}")
    return factory(**params).Commit()


def _datatype_decode(datatype: Datatype, mark: bool = False
                     ) -> tuple[Datatype, str, dict[str, Any]]:
    return datatype.decode()


def _typecode(datatype: Datatype) -> str | None:
    """``MPI._typecode``: the character code or type string of a type, if any."""
    return datatype._info.code or None


def _typealign(datatype: Datatype) -> int | None:
    """``MPI._typealign``: the alignment of a predefined type, if known."""
    info = datatype._info
    if info is _NULL_INFO or (not info.predefined and info.combiner != D.COMBINER_DUP):
        return None
    return int(info.align) or None


# -- the predefined types ------------------------------------------------------------

_predefined_by_name: dict[str, Datatype] = {}
_ALIGN = {c: ctypes.alignment(t) for c, t in {  # type: ignore[arg-type]
    "?": ctypes.c_bool, "b": ctypes.c_byte, "h": ctypes.c_short, "i": ctypes.c_int,
    "l": ctypes.c_long, "q": ctypes.c_longlong, "B": ctypes.c_ubyte, "H": ctypes.c_ushort,
    "I": ctypes.c_uint, "L": ctypes.c_ulong, "Q": ctypes.c_ulonglong,
    "f": ctypes.c_float, "d": ctypes.c_double, "g": ctypes.c_longdouble,
    "c": ctypes.c_char, "U": ctypes.c_wchar, "p": ctypes.c_void_p}.items()}
_ALIGN.update({"e": _ALIGN["f"] // 2, "E": _ALIGN["f"] // 2, "F": _ALIGN["f"],
               "D": _ALIGN["d"], "G": _ALIGN["g"], "S": 1})
_STR_OF_CHAR = {"?": "b1", "c": "S1", "U": "U1", "e": "f2", "E": "c4"}


def _typestr_of(typechar: str, size: int) -> str:
    if typechar in _STR_OF_CHAR:
        return _STR_OF_CHAR[typechar]
    kind = ("i" if typechar in "bhilqp" else "u" if typechar in "BHILQP" else
            "f" if typechar in "fdg" else "c")
    return f"{kind}{size}"


def _define(pyname: str, cname: str, size: int, category: str, typechar: str, *,
            sized: bool = False, np_spec: Any = None) -> Datatype:
    """A predefined type; ``sized``: its code is its type string (``i4``), as for the
    C99 fixed-size and Fortran sized types."""
    typestr = _typestr_of(typechar, size)
    info = TypeInfo(cname, size=size, lb=0, ub=size, category=category, typechar=typechar,
                    typestr=typestr, code=typestr if sized else typechar,
                    np_spec=np_spec if np_spec is not None else typestr,
                    align=_ALIGN.get(typechar, 1), predefined=True)
    dt = Datatype._define(info, pyname)
    _predefined_by_name[pyname] = dt
    return dt


def _define_null(pyname: str) -> Datatype:
    dt = DATATYPE_NULL
    _predefined_by_name[pyname] = dt
    return dt


def _define_pair(pyname: str, cname: str, ctype: Any, value_code: str) -> Datatype:
    class _Pair(ctypes.Structure):
        _fields_ = [("value", ctype), ("index", ctypes.c_int)]

    size = ctypes.sizeof(ctype) + ctypes.sizeof(ctypes.c_int)
    extent = ctypes.sizeof(_Pair)
    np_spec = {"names": ["value", "index"], "formats": [value_code, "i4"],
               "offsets": [0, _Pair.index.offset], "itemsize": extent, "aligned": True}
    info = TypeInfo(cname, size=size, lb=0, ub=extent, category="pair", typechar="V",
                    typestr=f"V{extent}", code=None, np_spec=np_spec,
                    align=max(_ALIGN[value_code], _ALIGN["i"]), predefined=True)
    dt = Datatype._define(info, pyname)
    _predefined_by_name[pyname] = dt
    return dt


_S = ctypes.sizeof
DATATYPE_NULL = Datatype._define(_NULL_INFO, "DATATYPE_NULL")
_predefined_by_name["DATATYPE_NULL"] = DATATYPE_NULL
PACKED = _define("PACKED", "MPI_PACKED", 1, "packed", "B")
BYTE = _define("BYTE", "MPI_BYTE", 1, "byte", "B")
AINT = _define("AINT", "MPI_AINT", _S(ctypes.c_ssize_t), "int", "p")
OFFSET = _define("OFFSET", "MPI_OFFSET", _S(ctypes.c_longlong), "int", "p")
COUNT = _define("COUNT", "MPI_COUNT", _S(ctypes.c_longlong), "int", "p")
CHAR = _define("CHAR", "MPI_CHAR", 1, "char", "c")
WCHAR = _define("WCHAR", "MPI_WCHAR", _S(ctypes.c_wchar), "wchar", "U")
SIGNED_CHAR = _define("SIGNED_CHAR", "MPI_SIGNED_CHAR", 1, "int", "b")
SHORT = _define("SHORT", "MPI_SHORT", _S(ctypes.c_short), "int", "h")
INT = _define("INT", "MPI_INT", _S(ctypes.c_int), "int", "i")
LONG = _define("LONG", "MPI_LONG", _S(ctypes.c_long), "int", "l")
LONG_LONG = _define("LONG_LONG", "MPI_LONG_LONG_INT", _S(ctypes.c_longlong), "int", "q")
UNSIGNED_CHAR = _define("UNSIGNED_CHAR", "MPI_UNSIGNED_CHAR", 1, "uint", "B")
UNSIGNED_SHORT = _define("UNSIGNED_SHORT", "MPI_UNSIGNED_SHORT", _S(ctypes.c_ushort), "uint",
                         "H")
UNSIGNED = _define("UNSIGNED", "MPI_UNSIGNED", _S(ctypes.c_uint), "uint", "I")
UNSIGNED_LONG = _define("UNSIGNED_LONG", "MPI_UNSIGNED_LONG", _S(ctypes.c_ulong), "uint", "L")
UNSIGNED_LONG_LONG = _define("UNSIGNED_LONG_LONG", "MPI_UNSIGNED_LONG_LONG",
                             _S(ctypes.c_ulonglong), "uint", "Q")
FLOAT = _define("FLOAT", "MPI_FLOAT", _S(ctypes.c_float), "float", "f")
DOUBLE = _define("DOUBLE", "MPI_DOUBLE", _S(ctypes.c_double), "float", "d")
LONG_DOUBLE = _define("LONG_DOUBLE", "MPI_LONG_DOUBLE", _S(ctypes.c_longdouble), "float", "g",
                      np_spec="g")
C_BOOL = _define("C_BOOL", "MPI_C_BOOL", _S(ctypes.c_bool), "bool", "?", sized=True)
INT8_T = _define("INT8_T", "MPI_INT8_T", 1, "int", "b", sized=True)
INT16_T = _define("INT16_T", "MPI_INT16_T", 2, "int", "h", sized=True)
INT32_T = _define("INT32_T", "MPI_INT32_T", 4, "int", "i", sized=True)
INT64_T = _define("INT64_T", "MPI_INT64_T", 8, "int", "l" if _S(ctypes.c_long) == 8 else "q",
                  sized=True)
UINT8_T = _define("UINT8_T", "MPI_UINT8_T", 1, "uint", "B", sized=True)
UINT16_T = _define("UINT16_T", "MPI_UINT16_T", 2, "uint", "H", sized=True)
UINT32_T = _define("UINT32_T", "MPI_UINT32_T", 4, "uint", "I", sized=True)
UINT64_T = _define("UINT64_T", "MPI_UINT64_T", 8, "uint",
                   "L" if _S(ctypes.c_ulong) == 8 else "Q", sized=True)
FLOAT16_T = _define("FLOAT16_T", "MPIX_C_FLOAT16", 2, "float", "e")
BFLOAT16_T = _define_null("BFLOAT16_T")  # no arithmetic for it here, as in MPICH's wheel
C_FLOAT_COMPLEX = _define("C_FLOAT_COMPLEX", "MPI_C_COMPLEX", 2 * _S(ctypes.c_float), "complex",
                          "F")
C_DOUBLE_COMPLEX = _define("C_DOUBLE_COMPLEX", "MPI_C_DOUBLE_COMPLEX", 2 * _S(ctypes.c_double),
                           "complex", "D")
C_LONG_DOUBLE_COMPLEX = _define("C_LONG_DOUBLE_COMPLEX", "MPI_C_LONG_DOUBLE_COMPLEX",
                                2 * _S(ctypes.c_longdouble), "complex", "G", np_spec="G")
CXX_BOOL = _define("CXX_BOOL", "MPI_CXX_BOOL", _S(ctypes.c_bool), "bool", "?")
CXX_FLOAT_COMPLEX = _define("CXX_FLOAT_COMPLEX", "MPI_CXX_FLOAT_COMPLEX",
                            2 * _S(ctypes.c_float), "complex", "F")
CXX_DOUBLE_COMPLEX = _define("CXX_DOUBLE_COMPLEX", "MPI_CXX_DOUBLE_COMPLEX",
                             2 * _S(ctypes.c_double), "complex", "D")
CXX_LONG_DOUBLE_COMPLEX = _define("CXX_LONG_DOUBLE_COMPLEX", "MPI_CXX_LONG_DOUBLE_COMPLEX",
                                  2 * _S(ctypes.c_longdouble), "complex", "G", np_spec="G")

SHORT_INT = _define_pair("SHORT_INT", "MPI_SHORT_INT", ctypes.c_short, "h")
TWOINT = _define_pair("TWOINT", "MPI_2INT", ctypes.c_int, "i")
LONG_INT = _define_pair("LONG_INT", "MPI_LONG_INT", ctypes.c_long, "l")
FLOAT_INT = _define_pair("FLOAT_INT", "MPI_FLOAT_INT", ctypes.c_float, "f")
DOUBLE_INT = _define_pair("DOUBLE_INT", "MPI_DOUBLE_INT", ctypes.c_double, "d")
LONG_DOUBLE_INT = _define_pair("LONG_DOUBLE_INT", "MPI_LONG_DOUBLE_INT", ctypes.c_longdouble,
                               "g")

# Fortran 77 (the sizes of gfortran's defaults, as MPICH reports them).
CHARACTER = _define("CHARACTER", "MPI_CHARACTER", 1, "char", "c")
LOGICAL = _define("LOGICAL", "MPI_LOGICAL", 4, "bool", "i", np_spec="i4")
INTEGER = _define("INTEGER", "MPI_INTEGER", 4, "int", "i")
REAL = _define("REAL", "MPI_REAL", 4, "float", "f")
DOUBLE_PRECISION = _define("DOUBLE_PRECISION", "MPI_DOUBLE_PRECISION", 8, "float", "d")
COMPLEX = _define("COMPLEX", "MPI_COMPLEX", 8, "complex", "F")
DOUBLE_COMPLEX = _define("DOUBLE_COMPLEX", "MPI_DOUBLE_COMPLEX", 16, "complex", "D")
# Fortran 90 sized types; the ones MPICH's wheel does not have are null here too.
LOGICAL1 = _define_null("LOGICAL1")
LOGICAL2 = _define_null("LOGICAL2")
LOGICAL4 = _define_null("LOGICAL4")
LOGICAL8 = _define_null("LOGICAL8")
LOGICAL16 = _define_null("LOGICAL16")
INTEGER1 = _define("INTEGER1", "MPI_INTEGER1", 1, "int", "b", sized=True)
INTEGER2 = _define("INTEGER2", "MPI_INTEGER2", 2, "int", "h", sized=True)
INTEGER4 = _define("INTEGER4", "MPI_INTEGER4", 4, "int", "i", sized=True)
INTEGER8 = _define("INTEGER8", "MPI_INTEGER8", 8, "int", "l", sized=True)
INTEGER16 = _define_null("INTEGER16")
REAL2 = _define_null("REAL2")
REAL4 = _define("REAL4", "MPI_REAL4", 4, "float", "f", sized=True)
REAL8 = _define("REAL8", "MPI_REAL8", 8, "float", "d", sized=True)
REAL16 = _define("REAL16", "MPI_REAL16", 16, "float", "g", sized=True, np_spec="g")
COMPLEX4 = _define_null("COMPLEX4")
COMPLEX8 = _define("COMPLEX8", "MPI_COMPLEX8", 8, "complex", "F", sized=True)
COMPLEX16 = _define("COMPLEX16", "MPI_COMPLEX16", 16, "complex", "D", sized=True)
COMPLEX32 = _define("COMPLEX32", "MPI_COMPLEX32", 32, "complex", "G", sized=True,
                    np_spec="G")
_REAL16_ALIGN = 16  # mpi4py's alignment for the 16-byte Fortran types
REAL16._info.align = COMPLEX32._info.align = _REAL16_ALIGN

# Aliases: the same handle under a second name, as in mpi4py.
C_COMPLEX = C_FLOAT_COMPLEX
UNSIGNED_INT = UNSIGNED
SIGNED_SHORT = SHORT
SIGNED_INT = INT
SIGNED_LONG = LONG
SIGNED_LONG_LONG = LONG_LONG
BOOL = C_BOOL
SINT8_T = INT8_T
SINT16_T = INT16_T
SINT32_T = INT32_T
SINT64_T = INT64_T
INT_INT = TWOINT
FLOAT32_T = FLOAT
FLOAT64_T = DOUBLE
F_BOOL = LOGICAL
F_INT = INTEGER
F_FLOAT = REAL
F_DOUBLE = DOUBLE_PRECISION
F_COMPLEX = COMPLEX
F_FLOAT_COMPLEX = COMPLEX
F_DOUBLE_COMPLEX = DOUBLE_COMPLEX

#: mpi4py's ``MPI._typedict``: buffer format / numpy type code -> Datatype.
_typedict: dict[str, Datatype] = {
    "?": C_BOOL, "b": SIGNED_CHAR, "h": SHORT, "i": INT, "l": LONG, "q": LONG_LONG,
    "B": UNSIGNED_CHAR, "H": UNSIGNED_SHORT, "I": UNSIGNED, "L": UNSIGNED_LONG,
    "Q": UNSIGNED_LONG_LONG, "e": FLOAT16_T, "f": FLOAT, "d": DOUBLE, "g": LONG_DOUBLE,
    "Zf": C_FLOAT_COMPLEX, "Zd": C_DOUBLE_COMPLEX, "F": C_FLOAT_COMPLEX, "D": C_DOUBLE_COMPLEX,
    "Zg": C_LONG_DOUBLE_COMPLEX, "G": C_LONG_DOUBLE_COMPLEX,
    "i1": INT8_T, "i2": INT16_T, "i4": INT32_T, "i8": INT64_T,
    "f4": FLOAT, "f8": DOUBLE, "f16": LONG_DOUBLE,
    "c8": C_FLOAT_COMPLEX, "c16": C_DOUBLE_COMPLEX, "c32": C_LONG_DOUBLE_COMPLEX,
    "b1": C_BOOL, "u1": UINT8_T, "u2": UINT16_T, "u4": UINT32_T, "u8": UINT64_T,
    "f2": FLOAT16_T, "n": COUNT, "N": UNSIGNED_LONG, "p": AINT, "P": UNSIGNED_LONG,
    "c": CHAR, "a": CHAR, "S": CHAR, "S1": CHAR, "s": CHAR, "1s": CHAR,
    "U": WCHAR, "U1": WCHAR, "u": UINT16_T, "1u": UINT16_T, "w": WCHAR, "1w": WCHAR,
    "M": INT64_T, "M8": INT64_T, "m": INT64_T, "m8": INT64_T,
}
_typedict_c: dict[str, Datatype] = {
    "?": C_BOOL, "b": SIGNED_CHAR, "h": SHORT, "i": INT, "l": LONG, "q": LONG_LONG,
    "B": UNSIGNED_CHAR, "H": UNSIGNED_SHORT, "I": UNSIGNED, "L": UNSIGNED_LONG,
    "Q": UNSIGNED_LONG_LONG, "f": FLOAT, "d": DOUBLE, "g": LONG_DOUBLE,
    "F": C_FLOAT_COMPLEX, "D": C_DOUBLE_COMPLEX, "G": C_LONG_DOUBLE_COMPLEX,
    "b1": C_BOOL, "i1": INT8_T, "i2": INT16_T, "i4": INT32_T, "i8": INT64_T,
    "u1": UINT8_T, "u2": UINT16_T, "u4": UINT32_T, "u8": UINT64_T, "f2": FLOAT16_T,
    "f4": FLOAT, "c8": C_FLOAT_COMPLEX, "f8": DOUBLE, "c16": C_DOUBLE_COMPLEX,
    "f16": LONG_DOUBLE, "c32": C_LONG_DOUBLE_COMPLEX,
}
_typedict_f: dict[str, Datatype] = {
    "l": LOGICAL, "i": INTEGER, "r": REAL, "s": REAL, "d": DOUBLE_PRECISION, "c": COMPLEX,
    "z": DOUBLE_COMPLEX, "i1": INTEGER1, "i2": INTEGER2, "i4": INTEGER4, "i8": INTEGER8,
    "r4": REAL4, "r8": REAL8, "r16": REAL16, "c8": COMPLEX8, "c16": COMPLEX16,
    "c32": COMPLEX32,
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
            raise C.KeyErrorException(C.ERR_TYPE, f"cannot map {datatype!r} to MPI datatype: "
                                      "use an MPI datatype such as MPI.DOUBLE or a "
                                      "type code such as 'd'") from None
    raise TypeErrorException(C.ERR_TYPE, f"expected an MPI.Datatype or a type code, "
                             f"got {type(datatype).__name__}")


def struct_format(datatype: Datatype) -> str | None:
    """The ``memoryview.cast`` format of a predefined leaf type, if it has one.

    Used where numpy is missing: reductions then run on typed memoryviews.
    """
    leaf = datatype._info.leaf
    if leaf is None:
        return None
    size = leaf.size
    if leaf.category in ("int", "char"):
        return {1: "b", 2: "h", 4: "i", 8: "q"}.get(size)
    if leaf.category in ("uint", "byte"):
        return {1: "B", 2: "H", 4: "I", 8: "Q"}.get(size)
    if leaf.category == "float":
        return {4: "f", 8: "d"}.get(size)
    if leaf.category == "bool" and size == _struct.calcsize("?"):
        return "?"
    return None


def as_numpy(view: memoryview, datatype: Datatype) -> Any:
    """A numpy array over ``view`` (no copy) of the predefined leaf elements of
    ``datatype``: a contiguous type of 3 doubles gives 3 doubles per element.
    Writable when ``view`` is."""
    try:
        import numpy as np
    except ImportError:
        raise C.Exception(C.ERR_OTHER, "numpy is needed for this: pip install numpy") from None
    leaf = datatype._checked().leaf
    if leaf is None or leaf.np_spec is None:
        raise C.Exception(C.ERR_TYPE, "this operation needs a datatype made of one "
                          "predefined type (this one mixes several)")
    dtype = _NUMPY_LEAF.get(leaf.handle)
    if dtype is None:
        dtype = _NUMPY_LEAF[leaf.handle] = np.dtype(leaf.np_spec)
    return np.frombuffer(view, dtype=dtype)


# The numpy element type of each predefined leaf type, found once: reductions ask per call.
_NUMPY_LEAF: dict[int, Any] = {}


# Only the names mpi4py's MPI module has: ``shoal.spmd.mpi`` star-imports this.
# as_numpy, to_datatype and struct_format are for shoal's own layers.
__all__ = [
    "Datatype", "_typedict", "_typedict_c", "_typedict_f", "_typecode", "_typealign",
    "_datatype_create", "_datatype_decode",
    *[name for name in _predefined_by_name],
    "C_COMPLEX", "UNSIGNED_INT", "SIGNED_SHORT", "SIGNED_INT", "SIGNED_LONG",
    "SIGNED_LONG_LONG", "BOOL", "SINT8_T", "SINT16_T", "SINT32_T", "SINT64_T", "INT_INT",
    "FLOAT32_T", "FLOAT64_T", "F_BOOL", "F_INT", "F_FLOAT", "F_DOUBLE", "F_COMPLEX",
    "F_FLOAT_COMPLEX", "F_DOUBLE_COMPLEX",
]
