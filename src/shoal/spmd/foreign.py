"""Buffers that are not Python buffers: DLPack tensors and CUDA-array-interface objects.

mpi4py accepts, besides objects with the buffer protocol, any object with
``__dlpack__``/``__dlpack_device__`` (DLPack, v0 and v1 capsules) or a
``__cuda_array_interface__`` dict, and hands their memory to MPI.  shoal does
the same for memory the host can read: DLPack tensors on the CPU (or in
CUDA host/managed memory), and interface objects whose pointer is mapped in
this process (which a self ``process_vm_readv`` probe checks, so a real GPU
pointer is refused with a clear error instead of a crash).  The memory is
wrapped without a copy; the DLPack capsule stays alive as long as the view.
"""

from __future__ import annotations

import ctypes
import sys
import warnings
from typing import Any

from shoal.spmd import constants as C

_CPU, _CUDA_HOST, _ROCM_HOST, _CUDA_MANAGED = 1, 3, 11, 13
_HOST_DEVICES = (_CPU, _CUDA_HOST, _ROCM_HOST, _CUDA_MANAGED)
_READ_ONLY = 1  # DLPACK_FLAG_BITMASK_READ_ONLY


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


class _DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", _DLPackVersion), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p), ("flags", ctypes.c_uint64),
                ("dl_tensor", _DLTensor)]


_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_is_valid = ctypes.pythonapi.PyCapsule_IsValid
_is_valid.restype = ctypes.c_int
_is_valid.argtypes = [ctypes.py_object, ctypes.c_char_p]

_SIZES = {"b": ctypes.sizeof(ctypes.c_byte), "h": ctypes.sizeof(ctypes.c_short),
          "i": ctypes.sizeof(ctypes.c_int), "l": ctypes.sizeof(ctypes.c_long),
          "q": ctypes.sizeof(ctypes.c_longlong)}


def _int_format(bits: int, signed: bool) -> str:
    for char in "bhilq":
        if bits == 8 * _SIZES[char]:
            return char if signed else char.upper()
    return "B"


def _float_format(bits: int) -> str:
    sizes = {16: "e", 8 * ctypes.sizeof(ctypes.c_float): "f",
             8 * ctypes.sizeof(ctypes.c_double): "d",
             8 * ctypes.sizeof(ctypes.c_longdouble): "g"}
    return sizes.get(bits, "B")


def _dl_format(code: int, bits: int, lanes: int) -> tuple[str, int]:
    """The struct format and item size of a DLPack element type (mpi4py's mapping)."""
    if lanes != 1:
        if code == 2 and lanes == 2 and _float_format(bits) in "fdg":
            return "Z" + _float_format(bits), 2 * bits // 8
        return "B", 1
    itemsize = (bits + 7) // 8
    if code == 6 and bits == 8:
        return "?", itemsize
    if code in (0, 1):
        return _int_format(bits, code == 0), itemsize
    if code == 2:
        return _float_format(bits), itemsize
    if code == 5:
        half = _float_format(bits // 2)
        return ("Z" + half if half in "efdg" else "B"), itemsize
    return "B", itemsize


def _contiguous(shape: list[int], strides: list[int] | None) -> bool:
    if strides is None:
        return True
    for order in (reversed(range(len(shape))), range(len(shape))):
        expect = 1
        ok = True
        for i in order:
            if shape[i] > 1 and strides[i] != expect:
                ok = False
                break
            expect *= shape[i]
        if ok:
            return True
    return False


def _wrap(address: int, nbytes: int, keep: Any, readonly: bool) -> memoryview:
    if not address and nbytes:
        raise C.BufferErrorException(C.ERR_BUFFER, f"a {nbytes}-byte buffer at the NULL "
                                     "address")
    array = (ctypes.c_ubyte * nbytes).from_address(address) if nbytes else (ctypes.c_ubyte * 0)()
    array._shoal_keep = keep  # type: ignore[attr-defined]  # the owner lives with the view
    view = memoryview(array).cast("B")
    return view.toreadonly() if readonly else view


def _not_host(what: str) -> C.TypeErrorException:
    return C.TypeErrorException(
        C.ERR_BUFFER, f"{what} is device (GPU) memory, which shoal cannot send: copy it to "
        "host memory first (for example with .get() or numpy.asarray on the host copy)")


def _host_readable(address: int, nbytes: int) -> bool:
    """Whether ``[address, address + nbytes)`` is mapped readable in this process."""
    if not nbytes:
        return True
    from shoal.transport import cma

    if cma.available():
        return cma.readable(address, address + nbytes - 1)
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                span, perms = line.split()[:2]
                low, high = (int(x, 16) for x in span.split("-"))
                if low <= address and address + nbytes <= high and perms[0] == "r":
                    return True
    except OSError:
        return False
    return False


def _device(obj: Any) -> int:
    """The DLPack device type, checked as mpi4py does (``(type, id)`` of ints)."""
    device_type, device_id = obj.__dlpack_device__()
    if not isinstance(device_type, int) or not isinstance(device_id, int):
        raise TypeError("__dlpack_device__() must return a tuple (device_type, device_id) "
                        "of integers")
    return int(device_type)


def _host_memory(what: str, device_type: int, address: int, nbytes: int) -> None:
    """Refuse device memory the host cannot read (host and managed memory are fine)."""
    if device_type in _HOST_DEVICES:
        return
    if not _host_readable(address, nbytes):
        raise _not_host(f"{what} (DLPack device type {device_type})")


def from_dlpack(obj: Any) -> tuple[memoryview, str]:
    """A flat view of a DLPack tensor in host memory, and its element format."""
    device_type = _device(obj)
    versioned = True
    try:
        if device_type == _CPU:
            capsule = obj.__dlpack__(max_version=(1, 0), copy=False)
        else:
            capsule = obj.__dlpack__(stream=-1, max_version=(1, 0), copy=False)
    except TypeError:
        versioned = False
        capsule = obj.__dlpack__() if device_type == _CPU else obj.__dlpack__(stream=-1)
    name = b"dltensor_versioned" if versioned else b"dltensor"
    if not _is_valid(capsule, name):
        raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: invalid capsule object")
    pointer = _get_pointer(capsule, name)
    readonly = False
    if versioned:
        managed = _DLManagedTensorVersioned.from_address(pointer)
        if managed.version.major < 1:
            raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: unexpected version")
        readonly = bool(managed.flags & _READ_ONLY)
        tensor = managed.dl_tensor
    else:
        tensor = _DLManagedTensor.from_address(pointer).dl_tensor
    ndim = tensor.ndim
    if ndim < 0:
        raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: number of dimensions is negative")
    if ndim > 0 and not tensor.shape:
        raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: shape is NULL")
    shape = [int(tensor.shape[i]) for i in range(ndim)]
    strides = [int(tensor.strides[i]) for i in range(ndim)] if tensor.strides else None
    if any(n < 0 for n in shape):
        raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: shape item is negative")
    if strides and any(st < 0 for st in strides):
        raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: strides item is negative")
    if not _contiguous(shape, strides):
        raise C.BufferErrorException(C.ERR_BUFFER, "dlpack: buffer is not contiguous")
    fmt, _ = _dl_format(tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes)
    count = 1
    for n in shape:
        count *= n
    nbytes = count * ((tensor.dtype.bits * tensor.dtype.lanes + 7) // 8)
    address = (tensor.data or 0) + tensor.byte_offset
    _host_memory(f"this {type(obj).__name__}", device_type, address, nbytes)
    return _wrap(address, nbytes, capsule, readonly), fmt


def _cai_format(kind: str, size: int) -> str:
    bits = 8 * size
    if kind == "b":
        return "?" if size == 1 else "B"
    if kind in "iu":
        return _int_format(bits, kind == "i")
    if kind == "f":
        return _float_format(bits)
    if kind == "c":
        half = _float_format(bits // 2)
        return "Z" + half if half in "efdg" else "B"
    return "B"


def _cai_contiguous(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    for order in ("C", "F"):
        indices = range(len(shape)) if order == "F" else reversed(range(len(shape)))
        size = itemsize
        ok = True
        for i in indices:
            if shape[i] > 1 and size != strides[i]:
                ok = False
                break
            size *= shape[i]
        if ok:
            return True
    return False


def _typed(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"__cuda_array_interface__: {what} must be a {kind.__name__}, got "
                        f"{type(value).__name__}")
    return value


def from_cuda_array_interface(obj: Any) -> tuple[memoryview, str]:
    """A flat view of a ``__cuda_array_interface__`` object whose memory the host maps
    (mpi4py's checks, in mpi4py's order)."""
    cai = _typed(obj.__cuda_array_interface__, dict, "the interface")
    data = _typed(cai["data"], tuple, "'data'")
    typestr = _typed(cai["typestr"], str, "'typestr'")
    shape = _typed(cai["shape"], tuple, "'shape'")
    strides = cai.get("strides")
    if strides is not None:
        _typed(strides, tuple, "'strides'")
    descr = cai.get("descr")
    if descr is not None:
        _typed(descr, list, "'descr'")
    mask = cai.get("mask")
    address, readonly = data
    size = 1
    for n in shape:
        size *= int(n)
    if address is None and size == 0:
        address = 0
    if not isinstance(address, int):
        raise TypeError("__cuda_array_interface__: the data pointer must be an int")
    order, kind, itemsize = typestr[:1], typestr[1:2], int(typestr[2:])
    fmt = _cai_format(kind, itemsize)
    native = "<" if sys.byteorder == "little" else ">"
    if order in "<>" and order != native:
        raise C.BufferErrorException(C.ERR_TYPE, f"__cuda_array_interface__: typestr "
                                     f"{typestr!r} with non-native byte order")
    if order not in "<>|":
        raise C.BufferErrorException(C.ERR_TYPE, f"__cuda_array_interface__: typestr "
                                     f"{typestr!r} with unrecognized byte order")
    if mask is not None:
        raise C.BufferErrorException(C.ERR_BUFFER, "__cuda_array_interface__: cannot handle "
                                     "masked arrays")
    if size < 0:
        raise C.BufferErrorException(C.ERR_BUFFER, f"__cuda_array_interface__: buffer with "
                                     f"negative size (shape:{shape}, size:{size})")
    if strides is not None and not _cai_contiguous(shape, strides, itemsize):
        raise C.BufferErrorException(C.ERR_BUFFER, f"__cuda_array_interface__: buffer is not "
                                     f"contiguous (shape:{shape}, strides:{strides})")
    if descr is not None and (len(descr) != 1 or descr[0] != ("", typestr)):
        warnings.warn("__cuda_array_interface__: ignoring 'descr' key", RuntimeWarning,
                      stacklevel=4)
    nbytes = size * itemsize
    if not _host_readable(address, nbytes):
        raise _not_host(f"this {type(obj).__name__} (__cuda_array_interface__)")
    return _wrap(address, nbytes, obj, bool(readonly)), fmt


def is_device(obj: Any) -> bool:
    """Whether a foreign buffer says it is device memory (mpi4py's ``MPI.buffer`` over it
    refuses host access: cast, tobytes, item access)."""
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        try:
            return _device(obj) not in _HOST_DEVICES
        except (TypeError, ValueError):
            return False
    return hasattr(obj, "__cuda_array_interface__")


def foreign_view(obj: Any) -> tuple[memoryview, str] | None:
    """A flat view and format of a DLPack or interface object; None for anything else."""
    if hasattr(obj, "__dlpack__"):
        if not hasattr(obj, "__dlpack_device__") and hasattr(obj, "__cuda_array_interface__"):
            return from_cuda_array_interface(obj)
        return from_dlpack(obj)
    if hasattr(obj, "__cuda_array_interface__"):
        return from_cuda_array_interface(obj)
    return None
