"""The executor's memory of the functions it sent, so ``submit`` pickles each once.

Pickling a ``__main__`` function by value (cloudpickle) costs ~45 us, as much
as the rest of a round trip's work in this process, and ``submit`` would pay
it for every call.  :class:`FunctionCache` keeps, per function object, the id
the service knows it by.  A function sent by reference (importable: the
worker imports it by name) stays valid as long as the object lives.  One sent
by value carried a copy of what it reads, so it is reused only while its
code, defaults, closure cells and the globals its code names are the very
same objects; rebinding any of them pickles it again.  An object it reads
that is changed in place (a list appended to) is not seen, as with
``ProcessPoolExecutor``, whose workers import the function afresh: pass such
data as an argument.  Other callables (partials, bound methods, callable
objects) are pickled every time.
"""

from __future__ import annotations

import types
import weakref
from typing import Any

_MISSING = object()
_NAMES: weakref.WeakKeyDictionary[types.CodeType, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """Every name ``code`` and the code nested in it may look up in its globals."""
    found = _NAMES.get(code)
    if found is None:
        names = dict.fromkeys(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                names.update(dict.fromkeys(_global_names(const)))
        found = _NAMES[code] = tuple(names)
    return found


def _state(fn: types.FunctionType) -> tuple[Any, ...]:
    """What a by-value pickle of ``fn`` copies, to compare by identity later."""
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(cell.cell_contents)
        except ValueError:  # an empty cell
            cells.append(_MISSING)
    names = _global_names(fn.__code__)
    space = fn.__globals__
    return (fn.__code__, fn.__defaults__, fn.__kwdefaults__, tuple(cells), names,
            tuple(space.get(name, _MISSING) for name in names))


def _unchanged(fn: types.FunctionType, state: tuple[Any, ...]) -> bool:
    code, defaults, kwdefaults, cells, names, values = state
    if fn.__code__ is not code or fn.__defaults__ is not defaults \
            or fn.__kwdefaults__ is not kwdefaults:
        return False
    if cells:
        for cell, value in zip(fn.__closure__ or (), cells, strict=True):
            try:
                if cell.cell_contents is not value:
                    return False
            except ValueError:
                if value is not _MISSING:
                    return False
    if names:
        get = fn.__globals__.get
        for name, value in zip(names, values, strict=True):
            if get(name, _MISSING) is not value:
                return False
    return True


class FunctionCache:
    """Function object -> the id it was sent under (see the module docstring).

    It holds at most :attr:`LIMIT` functions (and what they read), so functions
    made per call (lambdas in a loop) do not pile up.
    """

    LIMIT = 512

    def __init__(self) -> None:
        self._sent: dict[types.FunctionType, tuple[int, tuple[Any, ...] | None]] = {}

    def get(self, fn: Any) -> int | None:
        if type(fn) is not types.FunctionType:
            return None
        found = self._sent.get(fn)
        if found is None or (found[1] is not None and not _unchanged(fn, found[1])):
            return None
        return found[0]

    def put(self, fn: Any, fid: int, by_value: bool) -> None:
        if type(fn) is types.FunctionType:
            if len(self._sent) >= self.LIMIT:
                self._sent.clear()
            self._sent[fn] = (fid, _state(fn) if by_value else None)
