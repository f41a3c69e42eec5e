"""MPI objects shoal does not offer: one-sided windows, MPI-IO files and sessions.

Their classes and null handles exist (``MPI.Win``, ``MPI.WIN_NULL``,
``MPI.File``, ``MPI.FILE_NULL``, ``MPI.Session``, ``MPI.SESSION_NULL``), so a
program or library can name, compare and pickle them; every operation that
would make or use one raises ``NotImplementedError``, which is how mpi4py
reports an MPI feature the library lacks.
"""

from __future__ import annotations

from typing import Any

from shoal.spmd.handles import Handle, Record


class _NullRecord(Record):
    __slots__ = ()


def _absent(what: str) -> NotImplementedError:
    return NotImplementedError(f"{what} are not supported by shoal (see the README's list "
                               "of unsupported MPI features)")


class Win(Handle):
    """``MPI.Win``: one-sided communication (not supported)."""

    __slots__ = ()
    __module__ = "shoal.MPI"
    _NULL = _NullRecord()

    @classmethod
    def Create(cls, memory: Any, disp_unit: int = 1, info: Any = None,
               comm: Any = None) -> Win:
        raise _absent("one-sided windows (MPI.Win)")

    Allocate = Create
    Allocate_shared = Create

    @classmethod
    def Create_dynamic(cls, info: Any = None, comm: Any = None) -> Win:
        raise _absent("one-sided windows (MPI.Win)")

    def Free(self) -> None:
        raise _absent("one-sided windows (MPI.Win)")


class File(Handle):
    """``MPI.File``: MPI-IO (not supported)."""

    __slots__ = ()
    __module__ = "shoal.MPI"
    _NULL = _NullRecord()

    @classmethod
    def Open(cls, comm: Any, filename: Any, amode: int = 2, info: Any = None) -> File:
        raise _absent("MPI-IO files (MPI.File)")

    @classmethod
    def Delete(cls, filename: Any, info: Any = None) -> None:
        raise _absent("MPI-IO files (MPI.File)")

    def Close(self) -> None:
        raise _absent("MPI-IO files (MPI.File)")

    def Free(self) -> None:
        self.Close()


class Session(Handle):
    """``MPI.Session``: MPI 4 sessions (not supported; use ``COMM_WORLD``)."""

    __slots__ = ()
    __module__ = "shoal.MPI"
    _NULL = _NullRecord()

    @classmethod
    def Init(cls, info: Any = None, errhandler: Any = None) -> Session:
        raise _absent("MPI sessions (MPI.Session)")

    def Finalize(self) -> None:
        raise _absent("MPI sessions (MPI.Session)")

    def Free(self) -> None:
        self.Finalize()


for _cls in (Win, File, Session):
    _cls._FAMILY = _cls

WIN_NULL = Win._define(Win._NULL, "WIN_NULL")
FILE_NULL = File._define(File._NULL, "FILE_NULL")
SESSION_NULL = Session._define(Session._NULL, "SESSION_NULL")

__all__ = ["Win", "File", "Session", "WIN_NULL", "FILE_NULL", "SESSION_NULL"]
