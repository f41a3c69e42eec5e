"""mpi4py's buffer specifications, read without MPI.

:func:`parse_buffer` turns what a program passes to ``Send``/``Recv``/
``Gatherv`` (``buf``, ``[buf, MPI.DOUBLE]``, ``[buf, count, MPI.INT]``,
``[buf, (counts, displs), MPI.INT]``, ...) into a :class:`BufferSpec`,
following mpi4py's own rules (``msgbuffer.pxi``) and, where mpi4py would let
the C library read or write past the end of a buffer, failing with a clear
``MPI.Exception`` instead.  :func:`buffer_view` is the quick form for
point-to-point messages, which need only the bytes; :func:`list_view` the quicker
one for their hot paths, for the common lists (``[buf, count, MPI.BYTE]``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import derived
from shoal.spmd.constants import (
    BufferErrorException,
    TypeErrorException,
    ValueErrorException,
)
from shoal.spmd.datatypes import (
    _BYTE_ORDER_MARK,
    _NULL_INFO,
    BYTE,
    Datatype,
    _from_numpy_dtype,
    _predefined_by_name,
    _typedict,
    to_datatype,
)
from shoal.spmd.foreign import foreign_view
from shoal.spmd.memory import _BufferAPI

# -- buffer specifications -----------------------------------------------------


@dataclass(eq=False, slots=True)
class BufferSpec:
    """A parsed mpi4py buffer specification.

    ``view`` is a flat ``memoryview`` of format ``'B'`` over the buffer's own
    memory (no copy; writable when parsed with ``readonly=False``):

    * simple specs: exactly the bytes the message covers, ``blocks * count``
      elements of ``datatype`` starting at the displacement, if one was given;
      ``count`` is per block (``blocks`` > 1 for Scatter/Gather-style buffers).
    * vector specs: the whole buffer, the base ``displs`` are counted from;
      ``counts``/``displs`` are in elements, one per block, and ``count`` is
      their total.

    ``marker`` is ``MPI.IN_PLACE`` or ``MPI.BOTTOM`` when the spec was one of
    them (``view`` is then empty): the caller decides what that means.
    """

    view: memoryview
    count: int
    datatype: Datatype
    counts: tuple[int, ...] | None = None
    displs: tuple[int, ...] | None = None
    blocks: int = 1
    marker: Any = None
    stage: Stage | None = None

    @property
    def nbytes(self) -> int:
        return self.view.nbytes

    @property
    def unit(self) -> int:
        """Bytes per element in ``view``: the extent, or the packed size when staged."""
        info = self.datatype._info
        return info.packed if self.stage is not None else info.extent

    def commit(self) -> None:
        """Unpack a staged receive buffer into the user's memory (no-op otherwise)."""
        if self.stage is not None:
            self.stage.unpack(self.view)

    @property
    def is_vector(self) -> bool:
        return self.counts is not None

    @property
    def in_place(self) -> bool:
        return self.marker is C.IN_PLACE

    @property
    def is_bottom(self) -> bool:
        return self.marker is C.BOTTOM

    def block(self, i: int) -> memoryview:
        """The bytes of block ``i`` (process ``i``'s part in a collective)."""
        extent = self.unit
        if self.counts is not None and self.displs is not None:
            start = self.displs[i] * extent
            return self.view[start:start + self.counts[i] * extent]
        if not 0 <= i < self.blocks:
            raise IndexError(f"block {i} of {self.blocks}")
        size = self.count * extent
        return self.view[i * size:(i + 1) * size]


class Stage:
    """Where a staged buffer's packed bytes come from and go back to.

    A derived datatype that is not contiguous (a vector, a struct with holes
    ...) is packed into a contiguous staging buffer, which is what travels;
    a receive buffer is staged the same way (packed first, so that bytes a
    message does not reach keep their value) and unpacked by
    :meth:`BufferSpec.commit`.  ``user`` is None for absolute addresses
    (``MPI.BOTTOM``).
    """

    __slots__ = ("info", "user", "base", "count")

    def __init__(self, info: Any, user: memoryview | None, base: int, count: int) -> None:
        self.info = info
        self.user = user
        self.base = base
        self.count = count

    def pack(self) -> memoryview:
        out = memoryview(bytearray(self.count * self.info.packed))
        if self.user is None:
            derived.pack_absolute(self.info, self.base, self.count, out)
        else:
            derived.pack(self.info, self.user, self.base, self.count, out)
        return out

    def unpack(self, packed: memoryview) -> None:
        if self.user is None:
            derived.unpack_absolute(self.info, packed, self.base, self.count)
        else:
            derived.unpack(self.info, packed, self.user, self.base, self.count)


def _staged(flat: memoryview, datatype: Datatype, first: int, count: int,
            what: str) -> tuple[memoryview, Stage]:
    """Pack ``count`` elements of a non-contiguous type, from element ``first``."""
    info = datatype._info
    base = first * info.extent
    derived.check_span(info, count, base, flat.nbytes, what)
    stage = Stage(info, flat, base, count)
    return stage.pack(), stage


def _fits(info: Any, length: int, base: int) -> int:
    """How many elements of a non-contiguous type fit from byte ``base``."""
    if not info.segments() or info.extent <= 0:
        return 0
    room = length - base - info.true_ub
    return room // info.extent + 1 if room >= 0 else 0


def _index(value: Any, what: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeErrorException(C.ERR_ARG, f"{what} must be an integer, "
                                 f"got {type(value).__name__}") from None


def _is_integral(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def _int_list(values: Any, expected: int | None, what: str) -> list[int]:
    try:
        items = [operator.index(v) for v in values]
    except TypeError:
        raise TypeErrorException(C.ERR_ARG, f"{what} must be a sequence of integers, "
                                 f"got {values!r}") from None
    if expected is not None and len(items) != expected:
        raise ValueErrorException(C.ERR_COUNT, f"expecting {expected} {what} "
                                  f"(one per process), got {len(items)}")
    return items


def _unpack(spec: Any, vector: bool) -> tuple[Any, Any, Any, Any]:
    """``spec`` -> (buf, count(s), displ(s), datatype), as mpi4py reads it."""
    if not isinstance(spec, (list, tuple)):
        return spec, None, None, None
    buf: Any
    count: Any = None
    displ: Any = None
    dtype: Any = None
    # A pair after the buffer is (count, displ); for vectors only a tuple is,
    # since a list there is the counts.
    pair_types: tuple[type, ...] = (tuple,) if vector else (tuple, list)
    if len(spec) == 2:
        buf, count = spec
        if isinstance(count, (Datatype, str)):
            count, dtype = None, count
        elif isinstance(count, pair_types):
            count, displ = _pair(count)
    elif len(spec) == 3:
        buf, count, dtype = spec
        if isinstance(count, pair_types):
            count, displ = _pair(count)
    elif len(spec) == 4:
        buf, count, displ, dtype = spec
    else:
        raise ValueErrorException(C.ERR_ARG, "expecting 2 to 4 items: "
                                  "[buf, datatype], [buf, count, datatype], "
                                  f"[buf, (count, displ), datatype]; got {len(spec)} items")
    return buf, count, displ, dtype


def _pair(value: Any) -> tuple[Any, Any]:
    if len(value) != 2:
        raise ValueErrorException(C.ERR_ARG, "expecting (count, displacement), "
                                  f"got {value!r}")
    return value[0], value[1]


def _cast_flat(mv: memoryview) -> memoryview:
    """A C-contiguous view as flat unsigned bytes: a shape with a zero in it (numpy's
    (3, 0)), which ``memoryview.cast`` refuses, holds no bytes at all."""
    if mv.nbytes or mv.ndim < 2:
        return mv.cast("B")
    return memoryview(bytearray())


def _flat_view(buf: Any, readonly: bool) -> tuple[memoryview, str | None]:
    """A flat 'B' view over ``buf`` and the buffer's own format."""
    if buf is None:
        return memoryview(bytearray()), None
    if buf is C.IN_PLACE:
        raise ValueErrorException(C.ERR_BUFFER, "MPI.IN_PLACE must be passed alone, "
                                  "not inside a [buf, count, datatype] list")
    try:
        mv = memoryview(buf)
    except TypeError:
        mv = None
    if mv is None and isinstance(buf, _BufferAPI):
        mv = buf._bytes()  # an MPI.buffer on a Python without numpy and __buffer__
    if mv is None:
        found = foreign_view(buf)
        if found is None:
            raise TypeErrorException(
                C.ERR_BUFFER,
                "expecting a buffer (numpy array, bytes, bytearray, memoryview, "
                f"array.array, DLPack tensor) or a list [buf, count, datatype], got "
                f"{type(buf).__name__}; use the lower-case methods (send, recv, ...) for "
                "Python objects") from None
        view, fmt = found
        if not readonly and view.readonly:
            raise BufferErrorException(
                C.ERR_BUFFER, f"the receive buffer ({type(buf).__name__}) is read-only: "
                "pass a writable buffer")
        return view, fmt
    if not readonly and mv.readonly:
        raise BufferErrorException(
            C.ERR_BUFFER,
            f"the receive buffer ({type(buf).__name__}) is read-only: pass a writable "
            "buffer such as a bytearray or a writable numpy array")
    if mv.c_contiguous:
        return (mv if mv.ndim == 1 and mv.format == "B" else _cast_flat(mv)), mv.format
    if mv.f_contiguous:
        # Fortran-order arrays are contiguous memory too (mpi4py accepts them);
        # their transpose is C-contiguous over the very same bytes.
        try:
            import numpy as np
        except ImportError:
            pass
        else:
            transposed: Any = np.asarray(mv).T
            return memoryview(transposed).cast("B"), mv.format
    raise BufferErrorException(
        C.ERR_BUFFER,
        f"buffer must be C-contiguous: this {type(buf).__name__} is a strided view "
        "(such as a[::2] or a[:, 0]); pass a contiguous copy, e.g. numpy.ascontiguousarray(a)")


def _datatype_of_format(mv_format: str | None, buf: Any) -> Datatype:
    if mv_format is None:
        return BYTE
    fmt = mv_format
    if fmt[:1] == "@":
        fmt = fmt[1:]
    elif fmt[:1] in "<>":
        if fmt[0] != _BYTE_ORDER_MARK:
            raise BufferErrorException(C.ERR_TYPE, f"format string {mv_format!r} with "
                                       "non-native byte order: convert the array to native "
                                       "byte order first")
        fmt = fmt[1:]
    found = _typedict.get(fmt)
    if found is None and fmt.startswith("T{"):
        try:
            import numpy as np

            found = _from_numpy_dtype(np.asarray(buf).dtype)
        except ImportError:
            found = None
    if found is None:
        raise ValueErrorException(C.ERR_TYPE, f"cannot map buffer format {mv_format!r} to an "
                                  "MPI datatype: pass it explicitly, as [buf, MPI.DOUBLE]")
    return found


def _usable(datatype: Datatype) -> int:
    info = datatype._info
    if info is _NULL_INFO:
        raise ValueErrorException(C.ERR_TYPE, "the datatype is MPI.DATATYPE_NULL")
    if not info.committed:
        raise C.Exception(C.ERR_TYPE, "the derived datatype is not committed: "
                          "call .Commit() on it before communicating with it")
    return info.extent


_list_extents: dict[Any, int] = {}  # the predefined types' TypeInfo -> extent (see list_view)


def list_view(spec: list[Any] | tuple[Any, ...], readonly: bool) -> memoryview | None:
    """The bytes of ``[buf, count, datatype]`` or ``[buf, datatype]`` as a flat 'B' view,
    for the point-to-point hot paths: only a contiguous buffer, a plain ``int`` count that
    fits it and a predefined type whose elements are the bytes ``[0, extent)`` (no
    derived types, no duplicates); None for everything else, which
    :func:`parse_buffer` reads (and, if it is wrong, says why). The same bytes as
    ``parse_buffer(spec).view`` wherever it answers."""
    if not _list_extents:
        for datatype in _predefined_by_name.values():
            info = datatype._info
            if info is not _NULL_INFO and info.extent > 0 and info.contiguous:
                _list_extents[info] = info.extent
    n = len(spec)
    if n == 3:
        buf, count, dtype = spec
        if type(count) is not int or count < 0:
            return None
    elif n == 2:
        buf, dtype = spec
        count = -1
    else:
        return None
    if type(dtype) is not Datatype:
        return None
    extent = _list_extents.get(dtype._info)
    if extent is None:
        return None
    try:
        mv = memoryview(buf)
    except TypeError:
        return None
    if not mv.c_contiguous or (mv.readonly and not readonly):
        return None
    try:
        flat = mv if mv.ndim == 1 and mv.format == "B" else _cast_flat(mv)
    except (TypeError, ValueError):  # a format memoryview cannot cast
        return None
    if count < 0:
        return None if flat.nbytes % extent else flat
    size = count * extent
    if size == flat.nbytes:
        return flat
    return flat[:size] if size < flat.nbytes else None


def buffer_view(spec: Any, *, readonly: bool) -> memoryview:
    """The bytes of a point-to-point buffer spec as a flat 'B' view.

    Point-to-point messages need only the bytes, so the common case (a plain
    contiguous buffer, not a list spec) skips the full parse; everything else,
    errors included, goes through :func:`parse_buffer`.
    """
    kind = type(spec)
    if kind is not list and kind is not tuple and spec is not None:
        try:
            mv = memoryview(spec)
        except TypeError:
            pass
        else:
            if mv.c_contiguous and (readonly or not mv.readonly):
                return mv if mv.ndim == 1 and mv.format == "B" else _cast_flat(mv)
    return parse_buffer(spec, readonly=readonly).view


def parse_buffer(spec: Any, *, readonly: bool, vector: bool = False,
                 blocks: int | None = None) -> BufferSpec:
    """Read an mpi4py buffer specification.

    ``readonly``: True for send buffers; False demands a writable buffer.
    ``vector``: parse as the ``v`` collectives do (counts and displacements
    per process).  ``blocks``: the number of processes the buffer is split
    among: with simple specs, inferred counts are per block (Scatter, Gather,
    Alltoall); with vector specs it is needed to derive missing counts and
    checks the length of the given ones.
    """
    kind = type(spec)
    if kind is not list and kind is not tuple and not vector and (blocks or 1) == 1:
        # The common case first: a plain contiguous buffer of a basic type.
        try:
            mv = memoryview(spec)
        except TypeError:
            pass
        else:
            datatype = _typedict.get(mv.format)
            if datatype is not None and mv.c_contiguous and (readonly or not mv.readonly):
                flat = mv if mv.ndim == 1 and mv.format == "B" else _cast_flat(mv)
                return BufferSpec(flat, flat.nbytes // datatype.extent, datatype)
    if spec is C.IN_PLACE or spec is C.BOTTOM:
        return BufferSpec(memoryview(bytearray()), 0, BYTE, marker=spec)
    if spec is None:  # only [None, ...] means "no buffer", as in mpi4py
        raise TypeErrorException(C.ERR_BUFFER, "expecting a buffer or a list "
                                 "[buf, count, datatype], got None")
    buf, count, displ, dtype = _unpack(spec, vector)
    if buf is C.BOTTOM:
        if dtype is None:
            raise ValueErrorException(C.ERR_TYPE, "MPI.BOTTOM needs a datatype")
        return _bottom(to_datatype(dtype), count, displ, vector, blocks)
    flat, fmt = _flat_view(buf, readonly)
    datatype = _datatype_of_format(fmt, buf) if dtype is None else to_datatype(dtype)
    extent = _usable(datatype)
    if vector:
        return _vector(flat, buf is None, datatype, extent, count, displ, blocks)
    return _simple(flat, buf is None, datatype, extent, count, displ, blocks or 1)


def _bottom(datatype: Datatype, count: Any, displ: Any, vector: bool,
            blocks: int | None) -> BufferSpec:
    """``[MPI.BOTTOM, count, datatype]``: a type built from absolute addresses."""
    info = datatype._info
    _usable(datatype)
    if vector:  # only empty blocks: shoal's v-collectives take no absolute addresses
        spec = _vector(memoryview(bytearray()), False, datatype, info.extent, count, displ,
                       blocks)
        spec.marker = C.BOTTOM
        return spec
    n = 1 if count is None else _index(count, "count") if _is_integral(count) else 0
    if n <= 0 or not info.segments() or info.predefined:
        return BufferSpec(memoryview(bytearray()), n, datatype, marker=C.BOTTOM)
    if info.true_lb < 4096:
        raise ValueErrorException(
            C.ERR_BUFFER, "MPI.BOTTOM needs a derived datatype whose displacements are "
            "absolute addresses (from MPI.Get_address)")
    stage = Stage(info, None, 0, n)
    return BufferSpec(stage.pack(), n, datatype, marker=C.BOTTOM, stage=stage)


def _simple(flat: memoryview, no_buffer: bool, datatype: Datatype, extent: int,
            count: Any, displ: Any, blocks: int) -> BufferSpec:
    if not datatype._info.contiguous:
        return _simple_staged(flat, no_buffer, datatype, count, displ, blocks)
    name = datatype.name or "the derived datatype"
    length = flat.nbytes
    offset = 0
    if displ is not None:
        d = _index(displ, "displacement")
        if d < 0:
            raise ValueErrorException(C.ERR_ARG, f"negative displacement {d}")
        if d > 0:
            if extent <= 0 or d * extent > length:
                raise ValueErrorException(
                    C.ERR_BUFFER, f"displacement {d} out of bounds, the buffer "
                    f"holds {length // extent if extent else 0} entries of {name}")
            offset = d * extent
            length -= offset
    if count is not None:
        n = _index(count, "count")
        if n < 0:
            raise ValueErrorException(C.ERR_COUNT, f"negative count {n}")
        if n > 0 and no_buffer:
            raise ValueErrorException(C.ERR_BUFFER, f"buffer is None but count is {n}")
    elif length == 0:
        n = 0
    else:
        if extent <= 0 or length % extent:
            raise ValueErrorException(
                C.ERR_COUNT, f"cannot infer count, buffer length {length} is not a "
                f"multiple of the extent {extent} of {name}")
        entries = length // extent
        if entries % blocks:
            raise ValueErrorException(
                C.ERR_COUNT, f"cannot infer count, number of entries {entries} is "
                f"not a multiple of the number of processes {blocks}")
        n = entries // blocks
    need = n * blocks * extent
    if need > length:
        where = f" after a displacement of {offset} bytes" if offset else ""
        per = f" for each of {blocks} processes" if blocks > 1 else ""
        raise ValueErrorException(
            C.ERR_COUNT, f"count {n} of {name}{per} needs {need} bytes but the "
            f"buffer has {length} bytes{where}")
    return BufferSpec(flat[offset:offset + need], n, datatype, blocks=blocks)


def _simple_staged(flat: memoryview, no_buffer: bool, datatype: Datatype, count: Any,
                   displ: Any, blocks: int) -> BufferSpec:
    info = datatype._info
    first = 0 if displ is None else _index(displ, "displacement")
    if first < 0:
        raise ValueErrorException(C.ERR_ARG, f"negative displacement {first}")
    if info.extent <= 0 and (count is None or first > 0):
        raise ValueErrorException(C.ERR_TYPE, f"cannot infer a count or displace by elements "
                                  f"of a datatype of extent {info.extent}")
    if count is not None:
        n = _index(count, "count")
        if n < 0:
            raise ValueErrorException(C.ERR_COUNT, f"negative count {n}")
        if n > 0 and no_buffer:
            raise ValueErrorException(C.ERR_BUFFER, f"buffer is None but count is {n}")
    else:
        entries = _fits(info, flat.nbytes, first * info.extent)
        if entries % blocks:
            raise ValueErrorException(
                C.ERR_COUNT, f"cannot infer count, {entries} elements of the derived "
                f"datatype fit the buffer, not a multiple of the number of processes {blocks}")
        n = entries // blocks
    view, stage = _staged(flat, datatype, first, n * blocks, "buffer")
    return BufferSpec(view, n, datatype, blocks=blocks, stage=stage)


def _vector(flat: memoryview, no_buffer: bool, datatype: Datatype, extent: int,
            counts: Any, displs: Any, blocks: int | None) -> BufferSpec:
    name = datatype.name or "the derived datatype"
    bsize = flat.nbytes
    staged = not datatype._info.contiguous
    if counts is None and datatype._info.extent <= 0:
        raise ValueErrorException(C.ERR_TYPE, f"cannot infer counts from a datatype of "
                                  f"extent {datatype._info.extent}")
    if counts is None or _is_integral(counts):
        if blocks is None:
            raise ValueErrorException(C.ERR_COUNT, "a list of counts (one per "
                                      "process) is needed here")
        if counts is None:
            entries = 0
            if staged:
                entries = _fits(datatype._info, bsize, 0)
            elif bsize > 0:
                if extent <= 0 or bsize % extent:
                    raise ValueErrorException(
                        C.ERR_COUNT, f"cannot infer counts, buffer length {bsize} "
                        f"is not a multiple of the extent {extent} of {name}")
                entries = bsize // extent
            count_list = [entries // blocks + (entries % blocks > i) for i in range(blocks)]
        else:
            count_list = [_index(counts, "count")] * blocks
    else:
        count_list = _int_list(counts, blocks, "counts")
    nblocks = len(count_list)
    if displs is None:
        displ_list, start = [], 0
        for c in count_list:
            displ_list.append(start)
            start += c
    elif _is_integral(displs):
        stride = _index(displs, "displacement")
        displ_list = [stride * i for i in range(nblocks)]
    else:
        displ_list = _int_list(displs, nblocks, "displs")
    for i, (c, d) in enumerate(zip(count_list, displ_list, strict=True)):
        if c < 0:
            raise ValueErrorException(C.ERR_COUNT, f"negative count {c} for process {i}")
        if d < 0:
            raise ValueErrorException(C.ERR_ARG,
                                      f"negative displacement {d} for process {i}")
        if c and (no_buffer or (not staged and (d + c) * extent > bsize)):
            raise ValueErrorException(
                C.ERR_COUNT, f"process {i}'s count {c} at displacement {d} needs "
                f"{(d + c) * extent} bytes of {name} but the buffer has {bsize} bytes")
    stage = None
    if staged:
        end = max((d + c for c, d in zip(count_list, displ_list, strict=True) if c), default=0)
        flat, stage = _staged(flat, datatype, 0, end, "buffer")
    return BufferSpec(flat, sum(count_list), datatype, tuple(count_list), tuple(displ_list),
                      blocks=nblocks, stage=stage)


def parse_wspec(spec: Any, *, readonly: bool, blocks: int) -> list[BufferSpec]:
    """An ``Alltoallw`` buffer: ``[buf, (counts, displs), datatypes]`` (displacements in
    bytes, a datatype per process) as one spec per process."""
    if not isinstance(spec, (list, tuple)) or not 2 <= len(spec) <= 4:
        raise ValueErrorException(C.ERR_ARG, "expecting [buf, datatypes], "
                                  "[buf, (counts, displs), datatypes] or "
                                  "[buf, counts, displs, datatypes]")
    if len(spec) == 2:
        buf, types = spec
        counts: Any = None
        displs: Any = None
    elif len(spec) == 3:
        buf, (counts, displs), types = spec
    else:
        buf, counts, displs, types = spec
    bottom = buf is C.BOTTOM
    if bottom and (counts is None or displs is None):
        raise ValueErrorException(C.ERR_ARG, "MPI.BOTTOM needs counts and displacements")
    if counts is None and displs is None:
        count_list, displ_list = [1] * blocks, [0] * blocks
    else:
        count_list = _int_list(counts, blocks, "counts")
        displ_list = _int_list(displs, blocks, "displs")
    type_list = [to_datatype(t) for t in (types if isinstance(types, (list, tuple))
                                          else [types] * blocks)]
    if len(type_list) != blocks:
        raise ValueErrorException(C.ERR_COUNT, f"expecting {blocks} datatypes (one per "
                                  f"process), got {len(type_list)}")
    flat, _ = _flat_view(buf, readonly) if not bottom else (memoryview(bytearray()), None)
    out = []
    for i, (c, d, t) in enumerate(zip(count_list, displ_list, type_list, strict=True)):
        if c < 0 or d < 0:
            raise ValueErrorException(C.ERR_ARG, f"negative count or displacement for "
                                      f"process {i}")
        if c == 0:
            out.append(BufferSpec(memoryview(bytearray()), 0, t))
            continue
        _usable(t)
        info = t._info
        if bottom:  # absolute addresses: byte displacement d from address 0
            stage = Stage(info, None, d, c)
            out.append(BufferSpec(stage.pack(), c, t, stage=stage))
            continue
        if info.contiguous:
            end = d + c * info.extent
            if end > flat.nbytes:
                raise ValueErrorException(
                    C.ERR_COUNT, f"process {i}'s {c} elements at byte {d} need {end} bytes "
                    f"but the buffer has {flat.nbytes}")
            out.append(BufferSpec(flat[d:end], c, t))
        else:
            derived.check_span(info, c, d, flat.nbytes, f"process {i}'s block")
            stage = Stage(info, flat, d, c)
            out.append(BufferSpec(stage.pack(), c, t, stage=stage))
    return out
