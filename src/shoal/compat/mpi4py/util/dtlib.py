"""``mpi4py.util.dtlib`` on shoal: NumPy dtypes to MPI datatypes and back.

:func:`from_numpy_dtype` builds the MPI datatype of a NumPy dtype (a predefined type, a
contiguous or subarray type for a sub-array, a resized struct for a record);
:func:`to_numpy_dtype` reads a datatype back through its envelope (``combiner`` and
``decode()``), as mpi4py does.  Only MPI's documented datatype API is used, so what
works is what shoal's datatypes provide.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd import datatypes as _D
from shoal.spmd import mpi as _mpi

# Typed loosely: names appear here as shoal's MPI namespace gains them (mpi4py's API).
MPI: Any = _mpi

try:
    from numpy import dtype as _np_dtype
except ImportError:  # numpy is optional, as in mpi4py
    _np_dtype = None  # type: ignore[misc,assignment]

_PAIR_NAMES = ("SHORT", "INT", "LONG", "FLOAT", "DOUBLE", "LONG_DOUBLE")


def _typecode(datatype: Any) -> str | None:
    """The NumPy type code of a predefined datatype, None for pair types."""
    try:
        code = datatype.tocode()
    except (ValueError, MPI.Exception):
        return None
    return str(code) if code else None


def _alignment(datatype: Any) -> int:
    if _np_dtype is None:
        return int(datatype.Get_size()) or 1
    code = _typecode(datatype)
    if code is None:  # a pair type (FLOAT_INT ...): its record's, the larger member's
        return int(to_numpy_dtype(datatype).alignment) or 1
    return int(_np_dtype(code).alignment) or 1


def _free(datatypes: list[Any]) -> None:
    for datatype in datatypes:
        if not datatype.is_predefined:
            datatype.Free()


def _is_aligned(datatype: Any, offset: int = 0) -> bool:
    """Whether every predefined element of ``datatype`` at ``offset`` is aligned.

    mpi4py walks ``decode()`` (new handles, freed after); this walks the same tree
    on shoal's type records, which makes and frees nothing: ``to_numpy_dtype`` asks
    at every level of a nested record, so the walk must be cheap.
    """
    return _record_aligned(datatype._info, offset)


def _record_aligned(info: Any, offset: int) -> bool:
    if info.predefined:
        return offset == 0 or offset % _alignment(_D._handle(info)) == 0
    combiner = info.combiner
    params = info.params
    types = info.contents[3]
    if combiner == MPI.COMBINER_STRUCT:
        disps = list(params["displacements"])
    elif combiner == MPI.COMBINER_VALUE_INDEX or not types:
        return _decoded_aligned(_D._handle(info), offset)
    else:
        types = types[:1]
        if combiner == MPI.COMBINER_RESIZED:
            disps = [params["extent"]]
        elif combiner == MPI.COMBINER_HVECTOR:
            disps = [params["stride"] if params["count"] > 1 else 0]
        elif combiner in (MPI.COMBINER_HINDEXED, MPI.COMBINER_HINDEXED_BLOCK):
            disps = list(params["displacements"])
        else:
            disps = [0]
    return all(_record_aligned(t, offset + d) for t, d in zip(types, disps, strict=False))


def _decoded_aligned(datatype: Any, offset: int) -> bool:
    """:func:`_is_aligned` through ``decode()``, as mpi4py does (the rare combiners)."""
    combiner = datatype.combiner
    basetype, _, info = datatype.decode()
    types, disps = [basetype], [0]
    try:
        if combiner == MPI.COMBINER_STRUCT:
            types, disps = list(info["datatypes"]), list(info["displacements"])
        return all(_is_aligned(t, offset + d) for t, d in zip(types, disps, strict=False))
    finally:
        _free(types if combiner == MPI.COMBINER_STRUCT else [basetype])


def from_numpy_dtype(dtype: Any) -> Any:
    """The MPI datatype of a NumPy dtype (a new datatype; free it when done)."""
    if _np_dtype is None:
        raise RuntimeError("NumPy is not available")
    dtype = _np_dtype(dtype)
    if dtype.hasobject:
        raise ValueError("NumPy datatype with object entries")
    if not dtype.isnative:
        raise ValueError("NumPy datatype with non-native byteorder")
    if dtype.fields:  # a record: a struct resized to the record's size
        made: list[Any] = []
        try:
            lengths, offsets = [], []
            for name in dtype.names or ():
                field, offset = dtype.fields[name][:2]
                lengths.append(1)
                offsets.append(offset)
                made.append(from_numpy_dtype(field))
            struct = MPI.Datatype.Create_struct(lengths, offsets, made)
        finally:
            _free(made)
        try:
            return struct.Create_resized(0, dtype.itemsize)
        finally:
            struct.Free()
    if dtype.subdtype:  # a sub-array
        base, shape = dtype.subdtype
        element = from_numpy_dtype(base)
        try:
            if len(shape) == 1:
                return element.Create_contiguous(shape[0])
            return element.Create_subarray(shape, shape, (0,) * len(shape))
        finally:
            element.Free()
    return MPI.Datatype.fromcode(dtype.char).Dup()


def _np(spec: Any, **options: Any) -> Any:
    if _np_dtype is None:
        return spec if not options else (spec, options)
    return _np_dtype(spec, **options)


def _field(datatype: Any, count: int) -> Any:
    inner = to_numpy_dtype(datatype)
    return inner if count == 1 else (inner, count)


def _record(names: int, formats: list[Any], offsets: list[int], aligned: bool,
            itemsize: int | None = None) -> Any:
    spec: dict[str, Any] = {"names": [f"f{i}" for i in range(names)], "formats": formats,
                            "offsets": offsets, "aligned": aligned}
    if itemsize is not None:
        spec["itemsize"] = itemsize
    return _np(spec)


def to_numpy_dtype(datatype: Any) -> Any:
    """The NumPy dtype that lays out memory as ``datatype`` does."""
    if datatype == MPI.DATATYPE_NULL:
        raise ValueError("cannot convert null MPI datatype to NumPy")
    if datatype.is_predefined:  # a named type (MPI's COMBINER_NAMED)
        code = _typecode(datatype)
        if code is not None:
            return _np(code)
        pairs = [getattr(MPI, f"{name}_INT") for name in _PAIR_NAMES]
        value = getattr(MPI, _PAIR_NAMES[pairs.index(datatype)])
        return _np(f"{_typecode(value)},i", align=True)

    combiner = datatype.combiner
    basetype, _, info = datatype.decode()
    owned = [basetype]
    try:
        if combiner == MPI.COMBINER_DUP:
            return to_numpy_dtype(basetype)
        if combiner == MPI.COMBINER_CONTIGUOUS:
            return _np((to_numpy_dtype(basetype), (info["count"],)))
        if combiner == MPI.COMBINER_SUBARRAY:
            sizes, subsizes, starts = info["sizes"], info["subsizes"], info["starts"]
            if list(subsizes) != list(sizes) or any(starts):
                raise ValueError("cannot convert subarray MPI datatype to NumPy")
            if info["order"] == MPI.ORDER_FORTRAN:
                sizes = list(sizes)[::-1]
            return _np((to_numpy_dtype(basetype), tuple(sizes)))
        aligned = True
        if combiner == MPI.COMBINER_RESIZED and basetype.combiner == MPI.COMBINER_STRUCT:
            aligned = _is_aligned(basetype, info["extent"])
            combiner = MPI.COMBINER_STRUCT
            _, _, info = basetype.decode()
            _free([owned.pop()])  # the struct the resized type was made of
        if combiner == MPI.COMBINER_STRUCT:
            types = list(info["datatypes"])
            owned = types  # (a struct decodes to itself first: not ours to free)
            offsets = list(info["displacements"])
            aligned &= all(_is_aligned(t, d) for t, d in zip(types, offsets, strict=True))
            formats = [_field(t, n) for t, n in zip(types, info["blocklengths"], strict=True)]
            return _record(len(types), formats, offsets, aligned, datatype.extent)
        if combiner in (MPI.COMBINER_VECTOR, MPI.COMBINER_HVECTOR):
            count, length, stride = info["count"], info["blocklength"], info["stride"]
            if combiner == MPI.COMBINER_VECTOR:
                stride *= basetype.extent
                aligned = _is_aligned(basetype)
            else:
                stride = stride if count > 1 else 0
                aligned = _is_aligned(basetype, stride)
            element = to_numpy_dtype(basetype)
            return _record(count, [(element, (length,))] * count,
                           [stride * i for i in range(count)], aligned, datatype.extent)
        indexed = (MPI.COMBINER_INDEXED, MPI.COMBINER_HINDEXED,
                   MPI.COMBINER_INDEXED_BLOCK, MPI.COMBINER_HINDEXED_BLOCK)
        if combiner in indexed:
            displacements = list(info["displacements"])
            if combiner in indexed[:2]:
                lengths = list(info["blocklengths"])
            else:
                lengths = [info["blocklength"]] * len(displacements)
            in_bytes = combiner in (MPI.COMBINER_HINDEXED, MPI.COMBINER_HINDEXED_BLOCK)
            unit = 1 if in_bytes else basetype.extent
            aligned = _is_aligned(basetype)
            if in_bytes:
                aligned &= all(_is_aligned(basetype, d) for d in displacements)
            element = to_numpy_dtype(basetype)
            return _record(len(displacements), [(element, (n,)) for n in lengths],
                           [d * unit for d in displacements], aligned)
        raise ValueError("cannot convert MPI datatype to NumPy")
    finally:
        _free(owned)


__all__ = ["from_numpy_dtype", "to_numpy_dtype"]
