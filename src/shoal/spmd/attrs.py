"""Attribute caching: ``Create_keyval``, ``Set_attr``/``Get_attr``/``Delete_attr``.

A keyval names an attribute any communicator (or datatype) may hold; its
``copy_fn`` says what ``Dup`` does with the value (``None``/``False``: not
copied, ``True``: the same value, a function ``f(obj, keyval, value)``: what
it returns, unless ``NotImplemented``) and its ``delete_fn`` is called with
``(obj, keyval, value)`` when the value is deleted, replaced or its holder
freed.  Keyvals start above the predefined ones (``TAG_UB`` ...).

A callback that raises is reported as mpi4py does: its traceback goes to stderr and the
call raises ``MPI.Exception`` (``ERR_OTHER``, or the class of an ``MPI.Exception`` it
raised); a deleted value is gone even so, and freeing the holder never fails for it.
"""

from __future__ import annotations

import itertools
import sys
import threading
import traceback
from typing import Any

from shoal.spmd import constants as C


class _Keyval:
    __slots__ = ("copy_fn", "delete_fn", "nopython")

    def __init__(self, copy_fn: Any, delete_fn: Any, nopython: bool) -> None:
        if copy_fn is False:
            copy_fn = None
        if delete_fn in (False, True):
            delete_fn = None
        self.copy_fn = copy_fn
        self.delete_fn = delete_fn
        self.nopython = nopython


_lock = threading.Lock()
_numbers = itertools.count(1000)
_keyvals: dict[int, _Keyval] = {}


def create_keyval(copy_fn: Any = None, delete_fn: Any = None, nopython: bool = False) -> int:
    with _lock:
        keyval = next(_numbers)
        _keyvals[keyval] = _Keyval(copy_fn, delete_fn, nopython)
    return keyval


def free_keyval(keyval: int) -> int:
    with _lock:
        if _keyvals.pop(int(keyval), None) is None:
            raise C.Exception(C.ERR_KEYVAL, f"keyval {keyval} was not created (or is freed)")
    return C.KEYVAL_INVALID


def _known(keyval: int) -> _Keyval:
    state = _keyvals.get(int(keyval))
    if state is None:
        raise C.Exception(C.ERR_KEYVAL, f"keyval {keyval} was not created with "
                          "Create_keyval (or is freed)")
    return state


def set_attr(holder: Any, attrs: dict[int, Any], keyval: int, value: Any) -> None:
    state = _known(keyval)
    if state.nopython:
        value = int(value)
    if keyval in attrs:
        delete_attr(holder, attrs, keyval)
    attrs[keyval] = value


def get_attr(attrs: dict[int, Any], keyval: int) -> Any:
    _known(keyval)
    return attrs.get(keyval)


def delete_attr(holder: Any, attrs: dict[int, Any], keyval: int) -> None:
    state = _known(keyval)
    if keyval not in attrs:
        raise C.Exception(C.ERR_KEYVAL, f"no attribute with keyval {keyval} is set here")
    value = attrs.pop(keyval)
    if state.delete_fn is not None:
        _call(state.delete_fn, holder, keyval, value)


def _call(fn: Any, holder: Any, keyval: int, value: Any) -> Any:
    try:
        return fn(holder, keyval, value)
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        code = exc.Get_error_class() if isinstance(exc, C.Exception) else C.ERR_OTHER
        raise C.Exception(code, f"the attribute callback of keyval {keyval} raised "
                          f"{type(exc).__name__}: {exc}") from exc


def copy_attrs(holder: Any, attrs: dict[int, Any]) -> dict[int, Any]:
    """The attributes a duplicate of ``holder`` gets."""
    copied: dict[int, Any] = {}
    for keyval, value in attrs.items():
        state = _keyvals.get(keyval)
        if state is None or state.copy_fn is None:
            continue
        if state.copy_fn is True:
            copied[keyval] = value
            continue
        result = _call(state.copy_fn, holder, keyval, value)
        if result is not NotImplemented:
            copied[keyval] = result
    return copied


def delete_all(holder: Any, attrs: dict[int, Any]) -> None:
    """Delete every attribute (``holder`` is being freed)."""
    for keyval in list(attrs):
        state = _keyvals.get(keyval)
        value = attrs.pop(keyval)
        if state is not None and state.delete_fn is not None:
            try:
                _call(state.delete_fn, holder, keyval, value)
            except C.Exception:
                pass  # reported on stderr; the holder is freed even so
