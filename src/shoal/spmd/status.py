"""``MPI.Status``: where a received message came from, its tag and its size, in MPICH's
five ints; and the little record a request keeps of how it completed."""

from __future__ import annotations

import array
from typing import Any

from shoal.spmd.matching import ANY_SOURCE, ANY_TAG

UNDEFINED = -32766


class Status:
    """Where a received message came from, its tag and size (MPICH's five ints)."""

    __slots__ = ("_mem", "__weakref__")
    __module__ = "shoal.MPI"

    # _mem: count (low 32 bits), count high bits << 1 | cancelled, source, tag, error

    def __init__(self, status: Status | None = None) -> None:
        if status is None:
            self._mem = array.array("i", (0, 0, ANY_SOURCE, ANY_TAG, 0))
        elif isinstance(status, Status):
            self._mem = array.array("i", status._mem)
        else:
            raise TypeError(f"expected Status or None, got {type(status).__name__}")

    # -- fields
    @property
    def source(self) -> int:
        return self._mem[2]

    @source.setter
    def source(self, value: int) -> None:
        self._mem[2] = int(value)

    @property
    def tag(self) -> int:
        return self._mem[3]

    @tag.setter
    def tag(self, value: int) -> None:
        self._mem[3] = int(value)

    @property
    def error(self) -> int:
        return self._mem[4]

    @error.setter
    def error(self, value: int) -> None:
        self._mem[4] = int(value)

    def _get_bytes(self) -> int:
        mem = self._mem
        return (mem[0] & 0xFFFFFFFF) | ((mem[1] >> 1) << 32)

    def _set_bytes(self, nbytes: int) -> None:
        low = nbytes & 0xFFFFFFFF
        self._mem[0] = low - (1 << 32) if low >= 1 << 31 else low
        self._mem[1] = ((nbytes >> 32) << 1) | (self._mem[1] & 1)

    @property
    def count(self) -> int:
        return self._get_bytes()

    @count.setter
    def count(self, value: int) -> None:
        self._set_bytes(int(value))

    @property
    def cancelled(self) -> bool:
        return bool(self._mem[1] & 1)

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        self._mem[1] = (self._mem[1] & ~1) | (1 if value else 0)

    def Get_source(self) -> int:
        return self._mem[2]

    def Set_source(self, source: int) -> None:
        self.source = source

    def Get_tag(self) -> int:
        return self._mem[3]

    def Set_tag(self, tag: int) -> None:
        self.tag = tag

    def Get_error(self) -> int:
        return self._mem[4]

    def Set_error(self, error: int) -> None:
        self.error = error

    def Get_count(self, datatype: Any = None) -> int:
        """Whole elements of ``datatype`` received (``UNDEFINED`` if not whole)."""
        nbytes = self._get_bytes()
        if datatype is None:
            return nbytes
        unit = datatype._checked().packed
        if unit == 0:
            return 0
        return UNDEFINED if nbytes % unit else nbytes // unit

    def Get_elements(self, datatype: Any) -> int:
        """Basic elements received, counting those of a partly filled element."""
        nbytes = self._get_bytes()
        info = datatype._checked()
        unit = info.packed
        if unit == 0:
            return 0
        whole, rest = divmod(nbytes, unit)
        per = info.leaf_count if info.leaf is not None else 1
        if not rest:
            return whole * per
        if info.leaf is None or rest % (unit // per):
            return UNDEFINED
        return whole * per + rest // (unit // per)

    def Set_elements(self, datatype: Any, count: int) -> None:
        info = datatype._checked()
        per = info.leaf_count if info.leaf is not None else 1
        self._set_bytes(int(count) * (info.packed // per if per else 0))

    def Is_cancelled(self) -> bool:
        return self.cancelled

    def Set_cancelled(self, flag: bool) -> None:
        self.cancelled = bool(flag)

    def tomemory(self) -> memoryview:
        """The status's own memory, five C ints (writes change the status)."""
        return memoryview(self._mem)

    def py2f(self) -> list[int]:
        return list(self._mem)

    @classmethod
    def f2py(cls, arg: list[int]) -> Status:
        status = cls()
        status._mem = array.array("i", [int(v) for v in arg][:5])
        return status

    # -- comparisons and pickling
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self._mem == other._mem

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Status):
            return NotImplemented
        return self._mem != other._mem

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        return {"source": self.source, "tag": self.tag, "error": self.error,
                "count": self.count, "cancelled": self.cancelled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._mem = array.array("i", (0, 0, ANY_SOURCE, ANY_TAG, 0))
        self.source, self.tag, self.error = state["source"], state["tag"], state["error"]
        self.count = state.get("count", 0)
        self.cancelled = state.get("cancelled", False)

    def __reduce__(self) -> tuple[Any, ...]:
        import copyreg

        return (copyreg.__newobj__, (type(self),), self.__getstate__())  # type: ignore

    def __repr__(self) -> str:
        return f"<Status source={self.source} tag={self.tag} count={self.count}>"


class _Result:
    """A request's own record of how it completed (filled into the caller's Status)."""

    __slots__ = ("source", "tag", "count", "error", "cancelled")

    def __init__(self) -> None:
        self.source = ANY_SOURCE
        self.tag = ANY_TAG
        self.count = 0
        self.error = 0
        self.cancelled = False


def _fill(status: Any, source: int, tag: int, count: int, cancelled: bool = False) -> None:
    if status is not None:
        status.source, status.tag, status.count = source, tag, count
        status.error, status.cancelled = 0, cancelled


def _copy_result(status: Status | None, result: _Result | None) -> None:
    if status is None:
        return
    if result is None:
        _fill(status, ANY_SOURCE, ANY_TAG, 0)
    else:
        _fill(status, result.source, result.tag, result.count, result.cancelled)
        status.error = result.error
