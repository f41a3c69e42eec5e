"""mpi4py's buffer specifications, read without MPI.

:func:`parse_buffer` turns what a program passes to ``Send``/``Recv``/
``Gatherv`` (``buf``, ``[buf, MPI.DOUBLE]``, ``[buf, count, MPI.INT]``,
``[buf, (counts, displs), MPI.INT]``, ...) into a :class:`BufferSpec`,
following mpi4py's own rules (``msgbuffer.pxi``) and, where mpi4py would let
the C library read or write past the end of a buffer, failing with a clear
``MPI.Exception`` instead.  :func:`buffer_view` is the quick form for
point-to-point messages, which need only the bytes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from shoal.spmd import constants as C
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
    _typedict,
    to_datatype,
)

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

    @property
    def nbytes(self) -> int:
        return self.view.nbytes

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
        extent = self.datatype.extent
        if self.counts is not None and self.displs is not None:
            start = self.displs[i] * extent
            return self.view[start:start + self.counts[i] * extent]
        if not 0 <= i < self.blocks:
            raise IndexError(f"block {i} of {self.blocks}")
        size = self.count * extent
        return self.view[i * size:(i + 1) * size]


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
        gpu = hasattr(buf, "__cuda_array_interface__") or hasattr(buf, "__dlpack__")
        hint = (" (GPU arrays are not supported by shoal; copy to host memory first)"
                if gpu else "")
        raise TypeErrorException(
            C.ERR_BUFFER,
            "expecting a buffer (numpy array, bytes, bytearray, memoryview, "
            f"array.array) or a list [buf, count, datatype], got {type(buf).__name__}"
            f"{hint}; use the lower-case methods (send, recv, ...) for Python objects",
        ) from None
    if not readonly and mv.readonly:
        raise BufferErrorException(
            C.ERR_BUFFER,
            f"the receive buffer ({type(buf).__name__}) is read-only: pass a writable "
            "buffer such as a bytearray or a writable numpy array")
    if mv.c_contiguous:
        return (mv if mv.ndim == 1 and mv.format == "B" else mv.cast("B")), mv.format
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
                return mv if mv.ndim == 1 and mv.format == "B" else mv.cast("B")
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
                flat = mv if mv.ndim == 1 and mv.format == "B" else mv.cast("B")
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
        return BufferSpec(memoryview(bytearray()), count if _is_integral(count) else 0,
                          to_datatype(dtype), marker=C.BOTTOM)
    flat, fmt = _flat_view(buf, readonly)
    datatype = _datatype_of_format(fmt, buf) if dtype is None else to_datatype(dtype)
    extent = _usable(datatype)
    if vector:
        return _vector(flat, buf is None, datatype, extent, count, displ, blocks)
    return _simple(flat, buf is None, datatype, extent, count, displ, blocks or 1)


def _simple(flat: memoryview, no_buffer: bool, datatype: Datatype, extent: int,
            count: Any, displ: Any, blocks: int) -> BufferSpec:
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


def _vector(flat: memoryview, no_buffer: bool, datatype: Datatype, extent: int,
            counts: Any, displs: Any, blocks: int | None) -> BufferSpec:
    name = datatype.name or "the derived datatype"
    bsize = flat.nbytes
    if counts is None or _is_integral(counts):
        if blocks is None:
            raise ValueErrorException(C.ERR_COUNT, "a list of counts (one per "
                                      "process) is needed here")
        if counts is None:
            entries = 0
            if bsize > 0:
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
        if c and (no_buffer or (d + c) * extent > bsize):
            raise ValueErrorException(
                C.ERR_COUNT, f"process {i}'s count {c} at displacement {d} needs "
                f"{(d + c) * extent} bytes of {name} but the buffer has {bsize} bytes")
    return BufferSpec(flat, sum(count_list), datatype, tuple(count_list), tuple(displ_list),
                      blocks=nblocks)
