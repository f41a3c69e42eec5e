"""``Datatype.Pack``/``Unpack`` (and the ``external32`` variants): explicit packing.

``Pack`` appends the elements of a buffer, as many whole elements of the
datatype as it holds, to a byte buffer at ``position`` and returns the new
position; ``Unpack`` reads them back.  The packed form is the type map's data
without its holes (what a non-contiguous datatype travels as, see
:mod:`.derived`).  ``external32`` is the same data in big-endian byte order,
element by element (the sizes stay this machine's, as MPICH's do).
"""

from __future__ import annotations

import sys
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd import derived
from shoal.spmd.buffers import _flat_view


def check_datarep(datarep: str) -> None:
    if datarep != "external32":
        raise C.Exception(C.ERR_UNSUPPORTED_DATAREP, f"data representation {datarep!r} is "
                          "not supported: use 'external32'")


def pack_size(datatype: Any, count: int, external: bool = False) -> int:
    info = datatype._checked()
    if count < 0:
        raise C.ValueErrorException(C.ERR_COUNT, f"negative count {count}")
    return int(count) * info.packed


def _swap(view: memoryview, info: Any) -> None:
    """Reverse the bytes of each basic value in place (native <-> big-endian)."""
    if sys.byteorder == "big":
        return
    leaf = info.leaf
    if leaf is None:
        raise C.Exception(C.ERR_TYPE, "external32 packing needs a datatype made of one "
                          "predefined type")
    width = leaf.size // 2 if leaf.category == "complex" else leaf.size
    if leaf.category == "pair" or width <= 1 or not view.nbytes:
        return
    try:
        import numpy as np
    except ImportError:
        for start in range(0, view.nbytes, width):
            view[start:start + width] = bytes(view[start:start + width])[::-1]
        return
    array = np.frombuffer(view, dtype=np.uint8).reshape(-1, width)
    array[:] = array[:, ::-1].copy()


def pack_into(datatype: Any, inbuf: Any, outbuf: Any, position: int,
              external: bool = False) -> int:
    info = datatype._checked()
    source, _ = _flat_view(inbuf, True)
    target, _ = _flat_view(outbuf, False)
    extent = info.extent
    count = source.nbytes // extent if extent > 0 else 0
    nbytes = count * info.packed
    if position < 0 or position + nbytes > target.nbytes:
        raise C.Exception(C.ERR_TRUNCATE, f"Pack: {nbytes} bytes from position {position} "
                          f"do not fit the {target.nbytes}-byte output buffer")
    region = target[position:position + nbytes]
    if info.contiguous:
        region[:] = source[:nbytes]
    else:
        derived.check_span(info, count, 0, source.nbytes, "Pack")
        derived.pack(info, source, 0, count, region)
    if external:
        _swap(region, info)
    return position + nbytes


def unpack_from(datatype: Any, inbuf: Any, position: int, outbuf: Any,
                external: bool = False) -> int:
    info = datatype._checked()
    source, _ = _flat_view(inbuf, True)
    target, _ = _flat_view(outbuf, False)
    extent = info.extent
    count = target.nbytes // extent if extent > 0 else 0
    nbytes = count * info.packed
    if position < 0 or position + nbytes > source.nbytes:
        raise C.Exception(C.ERR_TRUNCATE, f"Unpack: {nbytes} bytes from position "
                          f"{position} go past the end of the {source.nbytes}-byte input")
    data = source[position:position + nbytes]
    if external:
        data = memoryview(bytearray(data))
        _swap(data, info)
    if info.contiguous:
        target[:nbytes] = data
    else:
        derived.check_span(info, count, 0, target.nbytes, "Unpack")
        derived.unpack(info, data, target, 0, count)
    return position + nbytes
