"""The type map of an MPI datatype: its bounds, its layout, packing and unpacking.

A :class:`TypeInfo` is the record behind ``MPI.Datatype`` handles (see
:mod:`shoal.spmd.handles`).  Predefined types are leaves; a derived type is
made by one *combiner* (``VECTOR``, ``STRUCT``, ``SUBARRAY`` ...) from blocks
of other types, and keeps the combiner's arguments for ``Get_envelope``,
``Get_contents`` and ``decode``.

Bounds follow the MPI standard: a block of ``b`` elements of type ``T`` at byte
displacement ``d`` spans ``d + lb(T) .. d + (b-1)*extent(T) + ub(T)``; a type's
lower and upper bound are the extremes over its blocks, and its *true* bounds
the same over the data actually present.  ``Create_resized`` sets the bounds
explicitly; a struct without explicit bounds has its extent rounded up to the
alignment of its members, as MPICH does (so a struct of a double and a char has
extent 16, as a C compiler lays it out).  Subarrays and distributed arrays span
the whole array (lower bound 0, extent of the full array).

The layout (:meth:`TypeInfo.segments`) is a list of ``(offset, length)`` byte
runs for one element, in type-map order, merged where adjacent; predefined
types are opaque runs of their extent (the value-index pairs of MAXLOC keep
their padding, which is harmless).  A type whose one run is ``(0, extent)``
is *contiguous*: its bytes go on the wire as they are.  Any other is packed
(gathered run by run into a contiguous staging buffer, with numpy when it is
there) before sending and unpacked after receiving.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.handles import Record

# MPICH's combiner numbers (checked against mpi4py 4.1 on the MPICH wheel).
COMBINER_NAMED = 1
COMBINER_DUP = 2
COMBINER_CONTIGUOUS = 3
COMBINER_VECTOR = 4
COMBINER_HVECTOR = 6
COMBINER_INDEXED = 7
COMBINER_HINDEXED = 9
COMBINER_INDEXED_BLOCK = 10
COMBINER_STRUCT = 12
COMBINER_SUBARRAY = 13
COMBINER_DARRAY = 14
COMBINER_F90_REAL = 15
COMBINER_F90_COMPLEX = 16
COMBINER_F90_INTEGER = 17
COMBINER_RESIZED = 18
COMBINER_HINDEXED_BLOCK = 19
COMBINER_VALUE_INDEX = 20

COMBINER_NAMES = {
    COMBINER_NAMED: "NAMED", COMBINER_DUP: "DUP", COMBINER_CONTIGUOUS: "CONTIGUOUS",
    COMBINER_VECTOR: "VECTOR", COMBINER_HVECTOR: "HVECTOR", COMBINER_INDEXED: "INDEXED",
    COMBINER_HINDEXED: "HINDEXED", COMBINER_INDEXED_BLOCK: "INDEXED_BLOCK",
    COMBINER_HINDEXED_BLOCK: "HINDEXED_BLOCK", COMBINER_STRUCT: "STRUCT",
    COMBINER_SUBARRAY: "SUBARRAY", COMBINER_DARRAY: "DARRAY", COMBINER_RESIZED: "RESIZED",
    COMBINER_VALUE_INDEX: "VALUE_INDEX", COMBINER_F90_INTEGER: "F90_INTEGER",
    COMBINER_F90_REAL: "F90_REAL", COMBINER_F90_COMPLEX: "F90_COMPLEX",
}

ORDER_C = 56
ORDER_FORTRAN = 57
DISTRIBUTE_BLOCK = 121
DISTRIBUTE_CYCLIC = 122
DISTRIBUTE_NONE = 123
DISTRIBUTE_DFLT_DARG = -49767

Contents = tuple[list[int], list[int], list[int], list["TypeInfo"]]


class TypeInfo(Record):
    """The shared record behind equal ``Datatype`` handles."""

    def __init__(self, name: str = "", *, size: int = 0, lb: int = 0, ub: int = 0,
                 true_lb: int | None = None, true_ub: int | None = None,
                 category: str = "mixed", typechar: str = "", typestr: str = "",
                 code: str | None = None, np_spec: Any = None, align: int = 1,
                 combiner: int = COMBINER_NAMED, params: dict[str, Any] | None = None,
                 contents: Contents | None = None, predefined: bool = False,
                 committed: bool = True, explicit: bool = False,
                 leaf: TypeInfo | None = None, leaf_count: int = 1) -> None:
        super().__init__()
        self.name = name
        self.size = size
        self.lb = lb
        self.ub = ub
        self.true_lb = lb if true_lb is None else true_lb
        self.true_ub = ub if true_ub is None else true_ub
        self.category = category  # what reductions may do with it (see datatypes)
        self.typechar = typechar
        self.typestr = typestr
        self.code = code  # MPI._typecode
        self.np_spec = np_spec  # anything np.dtype() accepts
        self.align = align
        self.combiner = combiner
        self.params = params or {}
        self.contents: Contents = contents or ([], [], [], [])
        self.predefined = predefined
        self.committed = committed
        self.explicit = explicit  # bounds set by Create_resized (here or below)
        self.leaf = leaf if leaf is not None else (self if predefined else None)
        self.leaf_count = leaf_count  # leaf elements per element, when homogeneous
        self._segments: list[tuple[int, int]] | None = None
        self._plans: dict[int, Any] = {}
        self.attrs: dict[int, Any] = {}  # Datatype.Set_attr's values

    @property
    def extent(self) -> int:
        return self.ub - self.lb

    # -- layout ---------------------------------------------------------------

    def segments(self) -> list[tuple[int, int]]:
        """``(offset, length)`` byte runs of one element, in type-map order."""
        if self._segments is None:
            if self.combiner == COMBINER_NAMED or self.predefined:
                self._segments = [(0, self.extent)] if self.extent else []
            else:
                self._segments = _merge(_expand(self))
        return self._segments

    @property
    def packed(self) -> int:
        """Bytes one element takes on the wire (its size; pairs keep their padding)."""
        return sum(length for _, length in self.segments())

    @property
    def contiguous(self) -> bool:
        """Whether ``count`` elements are exactly the bytes ``[0, count * extent)``."""
        if self.lb != 0:
            return False
        runs = self.segments()
        return (not runs and self.extent == 0) or runs == [(0, self.extent)]


def _merge(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for offset, length in runs:
        if not length:
            continue
        if merged and merged[-1][0] + merged[-1][1] == offset:
            last = merged[-1]
            merged[-1] = (last[0], last[1] + length)
        else:
            merged.append((offset, length))
    return merged


def _expand(info: TypeInfo) -> list[tuple[int, int]]:
    """The byte runs of one element of a derived type (unmerged)."""
    if info.combiner in (COMBINER_DUP, COMBINER_RESIZED):
        return list(info.contents[3][0].segments())
    runs: list[tuple[int, int]] = []
    for disp, count, base in info.params["_blocks"]:
        inner = base.segments()
        if not count or not inner:
            continue
        extent = base.extent
        if base.contiguous:
            if extent:
                runs.append((disp, count * extent))
            continue
        for j in range(count):
            start = disp + j * extent
            runs.extend((start + o, n) for o, n in inner)
    return runs


# -- making derived types ----------------------------------------------------------


def _count(value: Any, what: str) -> int:
    import operator

    try:
        n = operator.index(value)
    except TypeError:
        raise C.TypeErrorException(C.ERR_ARG, f"{what} must be an integer, "
                                   f"got {type(value).__name__}") from None
    return n


def _nonnegative(value: Any, what: str) -> int:
    n = _count(value, what)
    if n < 0:
        raise C.ValueErrorException(C.ERR_COUNT, f"negative {what} {n}")
    return n


def _ints(values: Any, what: str) -> list[int]:
    try:
        return [_count(v, what) for v in values]
    except TypeError:
        raise C.TypeErrorException(C.ERR_ARG, f"{what} must be a sequence of integers") from None


def from_blocks(blocks: list[tuple[int, int, TypeInfo]], combiner: int,
                params: dict[str, Any], contents: Contents, *, pad: bool = False,
                bounds: tuple[int, int] | None = None) -> TypeInfo:
    """A derived type of ``count`` elements of ``base`` at byte ``disp``, per block.

    ``pad``: round the extent up to the members' alignment (structs without
    explicit bounds).  ``bounds``: ``(lb, ub)`` set by the combiner itself
    (subarrays, distributed arrays).
    """
    size = 0
    lb = ub = tlb = tub = 0
    first = True
    align = 1
    explicit = False
    leaf: TypeInfo | None = None
    mixed = False
    leaves = 0
    for disp, count, base in blocks:
        align = max(align, base.align)
        if count <= 0 or (base.size == 0 and not base.explicit):
            continue
        explicit = explicit or base.explicit
        extent = base.extent
        lo, hi = min(0, (count - 1) * extent), max(0, (count - 1) * extent)
        b_lb, b_ub = disp + base.lb + lo, disp + base.ub + hi
        b_tlb, b_tub = disp + base.true_lb + lo, disp + base.true_ub + hi
        if first:
            lb, ub, tlb, tub, first = b_lb, b_ub, b_tlb, b_tub, False
        else:
            lb, ub = min(lb, b_lb), max(ub, b_ub)
            tlb, tub = min(tlb, b_tlb), max(tub, b_tub)
        size += count * base.size
        if base.size:
            if base.leaf is None or (leaf is not None and base.leaf is not leaf):
                mixed = True
            else:
                leaf = base.leaf
                leaves += count * base.leaf_count
    if bounds is not None:
        lb, ub = bounds
        explicit = True
    elif pad and not explicit and align > 1:
        extent = ub - lb
        if extent % align:
            ub += align - extent % align
    params = dict(params)
    params["_blocks"] = blocks
    if mixed:
        leaf = None
    return TypeInfo(size=size, lb=lb, ub=ub, true_lb=tlb, true_ub=tub,
                    category=leaf.category if leaf is not None else "mixed",
                    typechar="V", typestr=f"V{ub - lb}", align=align, combiner=combiner,
                    params=params, contents=contents, committed=False, explicit=explicit,
                    leaf=leaf, leaf_count=leaves if leaf is not None else 1)


def dup(base: TypeInfo) -> TypeInfo:
    return TypeInfo(size=base.size, lb=base.lb, ub=base.ub, true_lb=base.true_lb,
                    true_ub=base.true_ub, category=base.category,
                    typechar=base.typechar or "V", typestr=base.typestr,
                    code=base.code, np_spec=base.np_spec, align=base.align,
                    combiner=COMBINER_DUP, params={}, contents=([], [], [], [base]),
                    committed=base.committed, explicit=base.explicit,
                    leaf=base.leaf, leaf_count=base.leaf_count)


def contiguous(base: TypeInfo, count: Any) -> TypeInfo:
    n = _nonnegative(count, "count")
    return from_blocks([(0, n, base)], COMBINER_CONTIGUOUS, {"count": n},
                       ([], [], [n], [base]))


def hvector(base: TypeInfo, count: Any, blocklength: Any, stride: Any, *,
            elements: bool) -> TypeInfo:
    n = _nonnegative(count, "count")
    b = _nonnegative(blocklength, "blocklength")
    s = _count(stride, "stride")
    step = s * base.extent if elements else s
    blocks = [(i * step, b, base) for i in range(n)]
    combiner = COMBINER_VECTOR if elements else COMBINER_HVECTOR
    return from_blocks(blocks, combiner, {"count": n, "blocklength": b, "stride": s},
                       ([], [], [n, b, s], [base]))


def hindexed(base: TypeInfo, blocklengths: Any, displacements: Any, *,
             elements: bool) -> TypeInfo:
    lengths = _ints(blocklengths, "blocklengths")
    displs = _ints(displacements, "displacements")
    if len(lengths) != len(displs):
        raise C.ValueErrorException(C.ERR_ARG, f"{len(lengths)} blocklengths but "
                                    f"{len(displs)} displacements")
    for n in lengths:
        if n < 0:
            raise C.ValueErrorException(C.ERR_COUNT, f"negative blocklength {n}")
    unit = base.extent if elements else 1
    blocks = [(d * unit, n, base) for n, d in zip(lengths, displs, strict=True)]
    combiner = COMBINER_INDEXED if elements else COMBINER_HINDEXED
    return from_blocks(blocks, combiner, {"blocklengths": lengths, "displacements": displs},
                       ([], [], [len(lengths), *lengths, *displs], [base]))


def hindexed_block(base: TypeInfo, blocklength: Any, displacements: Any, *,
                   elements: bool) -> TypeInfo:
    b = _nonnegative(blocklength, "blocklength")
    displs = _ints(displacements, "displacements")
    unit = base.extent if elements else 1
    blocks = [(d * unit, b, base) for d in displs]
    combiner = COMBINER_INDEXED_BLOCK if elements else COMBINER_HINDEXED_BLOCK
    return from_blocks(blocks, combiner, {"blocklength": b, "displacements": displs},
                       ([], [], [len(displs), b, *displs], [base]))


def struct(blocklengths: Any, displacements: Any, types: Sequence[TypeInfo]) -> TypeInfo:
    lengths = _ints(blocklengths, "blocklengths")
    displs = _ints(displacements, "displacements")
    if not len(lengths) == len(displs) == len(types):
        raise C.ValueErrorException(C.ERR_ARG, f"Create_struct needs as many blocklengths "
                                    f"({len(lengths)}), displacements ({len(displs)}) and "
                                    f"datatypes ({len(types)})")
    for n in lengths:
        if n < 0:
            raise C.ValueErrorException(C.ERR_COUNT, f"negative blocklength {n}")
    blocks = [(d, n, t) for n, d, t in zip(lengths, displs, types, strict=True)]
    return from_blocks(blocks, COMBINER_STRUCT,
                       {"blocklengths": lengths, "displacements": displs},
                       ([], [], [len(lengths), *lengths, *displs], list(types)), pad=True)


def resized(base: TypeInfo, lb: Any, extent: Any) -> TypeInfo:
    low = _count(lb, "lb")
    ext = _count(extent, "extent")
    return TypeInfo(size=base.size, lb=low, ub=low + ext, true_lb=base.true_lb,
                    true_ub=base.true_ub, category=base.category, typechar="V",
                    typestr=f"V{ext}", align=base.align, combiner=COMBINER_RESIZED,
                    params={"lb": low, "extent": ext}, contents=([], [], [low, ext], [base]),
                    committed=False, explicit=True, leaf=base.leaf, leaf_count=base.leaf_count)


def _check_order(order: Any) -> int:
    value = _count(order, "order")
    if value not in (ORDER_C, ORDER_FORTRAN):
        raise C.ValueErrorException(C.ERR_ARG, f"order must be MPI.ORDER_C or "
                                    f"MPI.ORDER_FORTRAN, got {value}")
    return value


def _array_blocks(base: TypeInfo, sizes: list[int], picks: list[list[int]],
                  order: int) -> list[tuple[int, int, TypeInfo]]:
    """One block per run of picked elements of an array of ``sizes``.

    ``picks[d]`` are the indices taken along dimension ``d``; elements are
    visited in the array's storage order (the last index fastest for C).
    """
    ndims = len(sizes)
    dims = list(range(ndims)) if order == ORDER_C else list(range(ndims))[::-1]
    strides = [0] * ndims
    step = 1
    for d in reversed(dims):
        strides[d] = step
        step *= sizes[d]
    # Runs along the fastest dimension: consecutive indices make one block.
    fast = dims[-1]
    runs: list[tuple[int, int]] = []
    for index in picks[fast]:
        if runs and runs[-1][0] + runs[-1][1] == index:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    offsets = [0]
    for d in dims[:-1]:
        offsets = [o + i * strides[d] for o in offsets for i in picks[d]]
    extent = base.extent
    return [((o + start * strides[fast]) * extent, length, base)
            for o in offsets for start, length in runs]


def subarray(base: TypeInfo, sizes: Any, subsizes: Any, starts: Any, order: Any) -> TypeInfo:
    full = _ints(sizes, "sizes")
    sub = _ints(subsizes, "subsizes")
    first = _ints(starts, "starts")
    how = _check_order(order)
    ndims = len(full)
    if not ndims or not len(sub) == len(first) == ndims:
        raise C.ValueErrorException(C.ERR_ARG, "Create_subarray needs sizes, subsizes and "
                                    "starts of one length (the number of dimensions, >= 1)")
    for d in range(ndims):
        if full[d] < 1 or sub[d] < 1 or not 0 <= first[d] <= full[d] - sub[d]:
            raise C.ValueErrorException(
                C.ERR_ARG, f"dimension {d}: a subarray of {sub[d]} from {first[d]} does not "
                f"fit an array of {full[d]}")
    picks = [list(range(first[d], first[d] + sub[d])) for d in range(ndims)]
    blocks = _array_blocks(base, full, picks, how)
    total = math.prod(full) * base.extent
    return from_blocks(blocks, COMBINER_SUBARRAY,
                       {"sizes": full, "subsizes": sub, "starts": first, "order": how},
                       ([ndims, how], [], [*full, *sub, *first], [base]),
                       bounds=(base.lb, base.lb + total))


def _darray_picks(gsize: int, distrib: int, darg: int, psize: int, coord: int) -> list[int]:
    if distrib == DISTRIBUTE_NONE:
        return list(range(gsize))
    if distrib == DISTRIBUTE_BLOCK:
        block = -(-gsize // psize) if darg == DISTRIBUTE_DFLT_DARG else darg
        if block * psize < gsize:
            raise C.ValueErrorException(C.ERR_ARG, f"block size {block} times {psize} "
                                        f"processes does not cover {gsize} elements")
        start = coord * block
        return list(range(min(start, gsize), min(start + block, gsize)))
    if distrib == DISTRIBUTE_CYCLIC:
        block = 1 if darg == DISTRIBUTE_DFLT_DARG else darg
        if block < 1:
            raise C.ValueErrorException(C.ERR_ARG, f"cyclic block size {block} < 1")
        out: list[int] = []
        start = coord * block
        while start < gsize:
            out.extend(range(start, min(start + block, gsize)))
            start += psize * block
        return out
    raise C.ValueErrorException(C.ERR_ARG, f"unknown distribution {distrib}")


def darray(base: TypeInfo, size: Any, rank: Any, gsizes: Any, distribs: Any, dargs: Any,
           psizes: Any, order: Any) -> TypeInfo:
    nprocs = _count(size, "size")
    me = _count(rank, "rank")
    g = _ints(gsizes, "gsizes")
    dist = _ints(distribs, "distribs")
    args = _ints(dargs, "dargs")
    procs = _ints(psizes, "psizes")
    how = _check_order(order)
    ndims = len(g)
    if not ndims or not len(dist) == len(args) == len(procs) == ndims:
        raise C.ValueErrorException(C.ERR_ARG, "Create_darray needs gsizes, distribs, dargs "
                                    "and psizes of one length")
    if math.prod(procs) != nprocs or not 0 <= me < nprocs:
        raise C.ValueErrorException(C.ERR_ARG, f"psizes {procs} do not make {nprocs} "
                                    f"processes, or rank {me} is outside them")
    # The process grid is in C order whatever the array order (MPI's rule).
    coords = []
    rest = me
    for p in reversed(procs):
        coords.append(rest % p)
        rest //= p
    coords.reverse()
    picks = [_darray_picks(g[d], dist[d], args[d], procs[d], coords[d]) for d in range(ndims)]
    blocks = _array_blocks(base, g, picks, how) if all(picks) else []
    total = math.prod(g) * base.extent
    return from_blocks(blocks, COMBINER_DARRAY,
                       {"size": nprocs, "rank": me, "gsizes": g, "distribs": dist,
                        "dargs": args, "psizes": procs, "order": how},
                       ([nprocs, me, ndims, *dist, *args, *procs, how], [], list(g), [base]),
                       bounds=(base.lb, base.lb + total))


# -- decoding ----------------------------------------------------------------------


def envelope(info: TypeInfo) -> tuple[int, int, int, int, int]:
    ints, addrs, counts, types = info.contents
    return len(ints), len(addrs), len(counts), len(types), info.combiner


def decode_params(info: TypeInfo) -> dict[str, Any]:
    """The keyword arguments that rebuild ``info`` (``datatypes`` as records)."""
    params = {k: (list(v) if isinstance(v, list) else v)
              for k, v in info.params.items() if not k.startswith("_")}
    if info.combiner == COMBINER_STRUCT:
        params["datatypes"] = list(info.contents[3])
    return params


# -- packing -----------------------------------------------------------------------


def _plan(info: TypeInfo, count: int, base: int) -> tuple[int, Any]:
    """(g, indices): the element indices, in units of ``g`` bytes, of ``count``
    elements starting at byte ``base``, in wire order (numpy)."""
    import numpy as np

    runs = info.segments()
    extent = info.extent
    g = math.gcd(base, extent, *[v for run in runs for v in run])
    g = g or 1
    cached = info._plans.get(g)
    if cached is None:
        parts = [np.arange(o // g, (o + n) // g, dtype=np.int64) for o, n in runs]
        cached = info._plans[g] = (np.concatenate(parts) if parts
                                   else np.zeros(0, dtype=np.int64))
    starts = base // g + (extent // g) * np.arange(count, dtype=np.int64)
    return g, (starts[:, None] + cached[None, :]).ravel()


def check_span(info: TypeInfo, count: int, base: int, nbytes: int, what: str) -> None:
    """Fail clearly if ``count`` elements at byte ``base`` leave a buffer of ``nbytes``."""
    if count <= 0 or not info.segments():
        return
    extent = info.extent
    if extent < 0:
        raise C.ValueErrorException(C.ERR_TYPE, "a datatype with a negative extent cannot "
                                    "describe a buffer here")
    low = base + info.true_lb
    high = base + (count - 1) * extent + info.true_ub
    if low < 0 or high > nbytes:
        raise C.ValueErrorException(
            C.ERR_BUFFER, f"{what}: {count} element(s) of the derived datatype reach bytes "
            f"{low}..{high} but the buffer has {nbytes} bytes")


def pack(info: TypeInfo, source: memoryview, base: int, count: int,
         out: memoryview) -> None:
    """Gather ``count`` elements at byte ``base`` of ``source`` into ``out``."""
    total = count * info.packed
    if not total:
        return
    try:
        import numpy as np
    except ImportError:
        _copy_runs(info, source, base, count, out, gather=True)
        return
    g, idx = _plan(info, count, base)
    kind = np.dtype(f"V{g}")
    usable = source.nbytes - source.nbytes % g
    src = np.frombuffer(source[:usable], dtype=kind)
    np.take(src, idx, out=np.frombuffer(out[:total], dtype=kind))


def unpack(info: TypeInfo, packed: memoryview, target: memoryview, base: int,
           count: int) -> None:
    """Scatter ``count`` packed elements into ``target`` at byte ``base``."""
    total = count * info.packed
    if not total:
        return
    try:
        import numpy as np
    except ImportError:
        _copy_runs(info, target, base, count, packed, gather=False)
        return
    g, idx = _plan(info, count, base)
    kind = np.dtype(f"V{g}")
    usable = target.nbytes - target.nbytes % g
    dst = np.frombuffer(target[:usable], dtype=kind)
    dst[idx] = np.frombuffer(packed[:total], dtype=kind)


def _copy_runs(info: TypeInfo, user: memoryview, base: int, count: int,
               packed: memoryview, gather: bool) -> None:
    position = 0
    extent = info.extent
    for k in range(count):
        start = base + k * extent
        for offset, length in info.segments():
            a = start + offset
            if gather:
                packed[position:position + length] = user[a:a + length]
            else:
                user[a:a + length] = packed[position:position + length]
            position += length


def pack_absolute(info: TypeInfo, base: int, count: int, out: memoryview) -> None:
    """Gather from absolute addresses (a buffer spec of ``MPI.BOTTOM``)."""
    import ctypes

    position = 0
    for k in range(count):
        start = base + k * info.extent
        for offset, length in info.segments():
            out[position:position + length] = ctypes.string_at(start + offset, length)
            position += length


def unpack_absolute(info: TypeInfo, packed: memoryview, base: int, count: int) -> None:
    """Scatter to absolute addresses (a receive spec of ``MPI.BOTTOM``)."""
    import ctypes

    position = 0
    source = bytes(packed)
    for k in range(count):
        start = base + k * info.extent
        for offset, length in info.segments():
            ctypes.memmove(start + offset, source[position:position + length], length)
            position += length
