"""mpi4py's handle semantics, shared by ``MPI.Datatype`` and ``MPI.Op``.

In mpi4py such an object is a thin wrapper around a C handle: two wrappers are
equal when they hold the same handle, a wrapper is false when it holds the null
handle, and ``Free`` turns it into the null handle. Here the "handle" is the
object's ``_info`` record, and each class names its null record in ``_NULL``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

InfoT = TypeVar("InfoT")
H = TypeVar("H", bound="Handle[Any]")


class Handle(Generic[InfoT]):
    __slots__ = ("_info",)

    _NULL: ClassVar[Any]  # the class's null record (MPI_DATATYPE_NULL, MPI_OP_NULL)
    _info: InfoT

    @classmethod
    def _wrap(cls: type[H], info: Any) -> H:
        obj = cls.__new__(cls)
        obj._info = info
        return obj

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self._info is other._info

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self._info is not other._info

    def __hash__(self) -> int:
        return id(self._info)

    def __bool__(self) -> bool:
        return self._info is not self._NULL
