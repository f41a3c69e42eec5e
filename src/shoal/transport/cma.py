"""Cross-memory attach: copy a large message straight out of the sender's memory
(or, for part of it, straight into the receiver's: :func:`write`).

Linux's ``process_vm_readv`` copies from another process's address space in
one pass, so a large message costs one copy instead of the two of a ring
(sender in, receiver out).  The sender publishes where its buffers are (pid,
addresses, lengths) and keeps them alive until the receiver says it is done.
It needs the right to ptrace the sender (same user; Yama's ptrace_scope may
forbid it between siblings); a failed read is reported, and the engine then
streams the message through the ring instead.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

_IOV_MAX = 1024


class _IOVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _PyBuffer(ctypes.Structure):
    # The layout of CPython's Py_buffer (stable since 3.0).
    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.py_object),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.POINTER(ctypes.c_ssize_t)),
        ("strides", ctypes.POINTER(ctypes.c_ssize_t)),
        ("suboffsets", ctypes.POINTER(ctypes.c_ssize_t)),
        ("internal", ctypes.c_void_p),
    ]


def _load(name: str) -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.POINTER(_IOVec), ctypes.c_ulong,
                         ctypes.POINTER(_IOVec), ctypes.c_ulong, ctypes.c_ulong]
    function.restype = ctypes.c_ssize_t
    return function


_process_vm_readv = _load("process_vm_readv")
_process_vm_writev = _load("process_vm_writev")
_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]


def available() -> bool:
    """Whether this platform has ``process_vm_readv`` (permission is found out on use)."""
    return _process_vm_readv is not None and os.environ.get("SHOAL_CMA", "1") != "0"


def address(view: memoryview) -> int:
    """The address of a contiguous buffer's first byte (it must stay alive while used)."""
    info = _PyBuffer()
    _get_buffer(view, ctypes.byref(info), 0)  # PyBUF_SIMPLE: contiguous bytes
    try:
        return int(info.buf or 0)
    finally:
        _release_buffer(ctypes.byref(info))


_PROBE = ctypes.create_string_buffer(2)  # where readable() copies its two bytes


def readable(first: int, last: int) -> bool:
    """Whether this process can read the bytes at addresses ``first`` and ``last`` (one
    system call: a probe for memory that may be a device's, not the host's)."""
    if _process_vm_readv is None:
        return False
    local = _IOVec(ctypes.addressof(_PROBE), 2)
    remote = (_IOVec * 2)(_IOVec(first, 1), _IOVec(last, 1))
    return _process_vm_readv(os.getpid(), ctypes.byref(local), 1, remote, 2, 0) == 2


def read(pid: int, remote: list[tuple[int, int]], local: list[memoryview]) -> bool:
    """Copy the ``remote`` (address, length) pieces of ``pid`` into the ``local`` views.

    The pieces and views are consumed in order, as one stream of bytes on each
    side.  False if the kernel refused (permission) or copied short.
    """
    return _copy(_process_vm_readv, pid, remote, local)


def write(pid: int, remote: list[tuple[int, int]], local: list[memoryview]) -> bool:
    """Copy the ``local`` views into the ``remote`` (address, length) pieces of ``pid``
    (``process_vm_writev``; the same rules as :func:`read`)."""
    return _copy(_process_vm_writev, pid, remote, local)


def _copy(function: Any, pid: int, remote: list[tuple[int, int]],
          local: list[memoryview]) -> bool:
    if function is None:
        return False
    wanted = sum(length for _, length in remote)
    local_iov = [(address(view), view.nbytes) for view in local if view.nbytes]
    remote_iov = [(addr, length) for addr, length in remote if length]
    done = 0
    # The kernel takes at most IOV_MAX pieces a call, and may copy less than asked.
    while done < wanted:
        skip = done
        lvec, rvec = _window(local_iov, skip), _window(remote_iov, skip)
        local_array = (_IOVec * len(lvec))(*[_IOVec(a, n) for a, n in lvec])
        remote_array = (_IOVec * len(rvec))(*[_IOVec(a, n) for a, n in rvec])
        n = function(pid, local_array, len(lvec), remote_array, len(rvec), 0)
        if n <= 0:
            return False
        done += n
    return True


def _window(pieces: list[tuple[int, int]], skip: int) -> list[tuple[int, int]]:
    """The pieces from byte ``skip`` on, at most IOV_MAX of them."""
    out: list[tuple[int, int]] = []
    for addr, length in pieces:
        if skip >= length:
            skip -= length
            continue
        out.append((addr + skip, length - skip))
        skip = 0
        if len(out) == _IOV_MAX:
            break
    return out
