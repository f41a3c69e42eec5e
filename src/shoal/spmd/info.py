"""``MPI.Info``: ordered string key/value hints, ``INFO_NULL`` and ``INFO_ENV``.

An ``Info`` holds keys in insertion order (``Get_nthkey``), with MPI's limits
(keys up to ``MAX_INFO_KEY`` characters, values up to ``MAX_INFO_VAL``), and
behaves as a mapping (``info["key"]``, ``len``, ``in``, ``items()`` ...) as in
mpi4py.  ``INFO_ENV`` describes how this process was started (the command,
its arguments, the number of processes, the host, the working directory).
shoal reads no hints: communicators and calls accept an Info and keep it.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from shoal.spmd import constants as C
from shoal.spmd.handles import Handle, Record


class _InfoRecord(Record):
    __slots__ = ("items",)

    def __init__(self, items: dict[str, str] | None = None) -> None:
        super().__init__()
        self.items: dict[str, str] = dict(items or {})


_NULL_INFO = _InfoRecord()


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"info keys are str, not {type(key).__name__}")
    if not key or len(key) > C.MAX_INFO_KEY:
        raise C.Exception(C.ERR_INFO_KEY, f"info keys have 1 to {C.MAX_INFO_KEY} "
                          f"characters, got {len(key)}")
    return key


def _value(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"info values are str, not {type(value).__name__}")
    if len(value) > C.MAX_INFO_VAL:
        raise C.Exception(C.ERR_INFO_VALUE, f"info values have at most {C.MAX_INFO_VAL} "
                          f"characters, got {len(value)}")
    return value


class Info(Handle):
    """``MPI.Info``."""

    __slots__ = ()
    __module__ = "shoal.MPI"
    _NULL = _NULL_INFO
    _info: _InfoRecord

    def _reduce_created(self) -> tuple[Any, ...]:
        return (type(self).Create, (self.items(),))

    def _items(self) -> dict[str, str]:
        if self._info is _NULL_INFO:
            raise C.Exception(C.ERR_INFO, "this is MPI.INFO_NULL (or a freed Info)")
        return self._info.items

    # -- MPI calls ----------------------------------------------------------------

    @classmethod
    def Create(cls, items: Any = None) -> Info:
        info = cls._wrap(_InfoRecord())
        if items is None:
            return info
        if isinstance(items, Info) or hasattr(items, "keys"):
            pairs: Iterable[Any] = [(k, items[k]) for k in items.keys()]  # noqa: SIM118
        else:
            try:
                pairs = list(items)
            except TypeError:
                raise TypeError(f"expected an Info, a mapping or (key, value) pairs, got "
                                f"{type(items).__name__}") from None
        for key, value in pairs:
            info.Set(key, value)
        return info

    @classmethod
    def Create_env(cls, args: Sequence[str] | str | None = None) -> Info:
        items = _environment()
        if args is not None:
            argv = [args] if isinstance(args, str) else list(args)
            if argv:
                items["command"] = argv[0]
                items["argv"] = " ".join(argv[1:])
        return cls._wrap(_InfoRecord(items))

    def Free(self) -> None:
        self._items()
        if self._const:
            raise C.Exception(C.ERR_INFO, "predefined Info objects cannot be freed")
        self._info = _NULL_INFO

    def Dup(self) -> Info:
        return type(self)._wrap(_InfoRecord(self._items()))

    def Get(self, key: str) -> str | None:
        return self._items().get(_key(key))

    def Set(self, key: str, value: str) -> None:
        self._items()[_key(key)] = _value(value)

    def Delete(self, key: str) -> None:
        items = self._items()
        if _key(key) not in items:
            raise C.Exception(C.ERR_INFO_NOKEY, f"no key {key!r} in this Info")
        del items[key]

    def Get_nkeys(self) -> int:
        return len(self._items())

    def Get_nthkey(self, n: int) -> str:
        keys = list(self._items())
        if not 0 <= n < len(keys):
            raise C.Exception(C.ERR_ARG, f"key index {n} out of range: this Info has "
                              f"{len(keys)} keys")
        return keys[n]

    # -- the mapping interface ----------------------------------------------------

    def __len__(self) -> int:
        return len(self._info.items) if self else 0

    def __contains__(self, key: object) -> bool:
        return bool(self) and key in self._info.items

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __getitem__(self, key: str) -> str:
        if not self:
            raise KeyError(key)
        value = self.Get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: str) -> None:
        if not self:
            raise KeyError(key)
        self.Set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self or key not in self:
            raise KeyError(key)
        self.Delete(key)

    def get(self, key: str, default: str | None = None) -> str | None:
        if not self:
            return default
        value = self.Get(key)
        return default if value is None else value

    def keys(self) -> list[str]:
        return list(self._info.items) if self else []

    def values(self) -> list[str]:
        return list(self._info.items.values()) if self else []

    def items(self) -> list[tuple[str, str]]:
        return list(self._info.items.items()) if self else []

    def update(self, items: Any = (), **kwds: str) -> None:
        if not self:
            raise KeyError("update on MPI.INFO_NULL")
        pairs = ([(k, items[k]) for k in items.keys()] if isinstance(items, Mapping)  # noqa: SIM118
                 or hasattr(items, "keys") else list(items))
        for key, value in [*pairs, *kwds.items()]:
            self.Set(key, value)

    def pop(self, key: str, *default: str) -> str:
        value = self.Get(key) if self else None
        if value is not None:
            self.Delete(key)
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[str, str]:
        if not self or not self._info.items:
            raise KeyError("popitem(): this Info is empty")
        key = list(self._info.items)[-1]
        return key, self._info.items.pop(key)

    def copy(self) -> Info:
        return self.Dup() if self else type(self)()

    def clear(self) -> None:
        if self:
            self._info.items.clear()

    def __repr__(self) -> str:
        return "<MPI.Info INFO_NULL>" if not self else f"<MPI.Info {self.items()}>"


Info._FAMILY = Info


def _environment() -> dict[str, str]:
    """MPI_INFO_ENV's keys for this process."""
    from shoal.spmd import world

    items = {"command": sys.executable, "argv": " ".join(sys.argv[1:]),
             "maxprocs": str(world.world_size()), "host": socket.gethostname(),
             "wdir": os.getcwd(), "thread_level": "MPI_THREAD_MULTIPLE"}
    if sys.argv and sys.argv[0]:
        items["file"] = sys.argv[0]
    return items


def as_record(info: Any) -> dict[str, str]:
    """The hints of an ``info`` argument (``None``, ``INFO_NULL`` or an Info) as a dict."""
    if info is None:
        return {}
    if not isinstance(info, Info):
        raise TypeError(f"expected an MPI.Info, got {type(info).__name__}")
    return dict(info._info.items) if info else {}


INFO_NULL = Info._define(_NULL_INFO, "INFO_NULL")
INFO_ENV = Info._define(_InfoRecord(_environment()), "INFO_ENV")

__all__ = ["Info", "INFO_NULL", "INFO_ENV"]
