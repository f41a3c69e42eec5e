"""mpi4py's constants as plain module values, and ``MPI.Exception``.

The numbers are MPICH's (checked against mpi4py 4.1 on the MPICH wheel), so a
program that prints or compares them sees the same values under both
backends.  The one deliberate difference is the value of the ``TAG_UB``
attribute: shoal's tags are 32-bit, so ``comm.Get_attr(TAG_UB)`` is
:data:`TAG_UB_VALUE` (``2**31 - 1``) where MPICH says ``2**29 - 1``.

:class:`Exception` shadows the builtin inside this module on purpose, as in
mpi4py (``MPI.Exception``); the builtin is reached as ``builtins.Exception``.
"""

from __future__ import annotations

import builtins
from typing import Any, Final

from shoal.errors import CommunicationError

# -- ranks, tags and other special integers ---------------------------------

ANY_SOURCE: Final = -2
ANY_TAG: Final = -1
PROC_NULL: Final = -1
ROOT: Final = -3
UNDEFINED: Final = -32766

#: Attribute keys (keyvals) for ``Comm.Get_attr``, MPICH's numbers.
TAG_UB: Final = 1681915905
IO: Final = 1681915909
WTIME_IS_GLOBAL: Final = 1681915911
UNIVERSE_SIZE: Final = 1681915913
LASTUSEDCODE: Final = 1681915915
APPNUM: Final = 1681915917
KEYVAL_INVALID: Final = 603979776

#: What ``comm.Get_attr(TAG_UB)`` returns under shoal: the largest valid tag.
TAG_UB_VALUE: Final = 2**31 - 1

# Results of Comm.Compare / Group.Compare.
IDENT: Final = 0
CONGRUENT: Final = 1
SIMILAR: Final = 2
UNEQUAL: Final = 3

# Comm.Split_type.
COMM_TYPE_SHARED: Final = 1
COMM_TYPE_HW_GUIDED: Final = 2
COMM_TYPE_HW_UNGUIDED: Final = 3
COMM_TYPE_RESOURCE_GUIDED: Final = 4

# Thread support levels.
THREAD_SINGLE: Final = 0
THREAD_FUNNELED: Final = 1
THREAD_SERIALIZED: Final = 2
THREAD_MULTIPLE: Final = 3

# Topology kinds (Comm.Get_topology).
GRAPH: Final = 1
CART: Final = 2
DIST_GRAPH: Final = 3

# Array orders for Create_subarray / Create_darray.
ORDER_C: Final = 56
ORDER_F: Final = 57

MAX_PROCESSOR_NAME: Final = 128
MAX_ERROR_STRING: Final = 512
MAX_OBJECT_NAME: Final = 128
MAX_PORT_NAME: Final = 1024
MAX_INFO_KEY: Final = 255
MAX_INFO_VAL: Final = 1024
MAX_LIBRARY_VERSION_STRING: Final = 8192
BSEND_OVERHEAD: Final = 96

#: The MPI standard version shoal's facade follows (mpi4py's MPI.VERSION).
VERSION: Final = 4
SUBVERSION: Final = 1


class _Sentinel:
    """A named singleton such as ``MPI.IN_PLACE``.

    It pickles by name, so it stays the same object after a round trip, and
    ``int()`` gives mpi4py's value.
    """

    __slots__ = ("_name", "_value")

    def __init__(self, name: str, value: int) -> None:
        self._name = name
        self._value = value

    def __repr__(self) -> str:
        return self._name

    def __int__(self) -> int:
        return self._value

    def __reduce__(self) -> str:
        return self._name


IN_PLACE: Final = _Sentinel("IN_PLACE", -1)
BOTTOM: Final = _Sentinel("BOTTOM", 0)
BUFFER_AUTOMATIC: Final = _Sentinel("BUFFER_AUTOMATIC", 0)


class Errhandler:
    """``MPI.Errhandler``: only the predefined handlers exist in shoal.

    shoal always reports errors by raising :class:`Exception`, which is what
    mpi4py does under ``ERRORS_RETURN`` (its default); the handler a program
    sets is remembered and handed back, nothing more.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str = "ERRHANDLER_NULL") -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<MPI.Errhandler {self._name}>"

    def __bool__(self) -> bool:
        return self._name != "ERRHANDLER_NULL"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Errhandler) and other._name == self._name

    def __hash__(self) -> int:
        return hash(self._name)

    def __reduce__(self) -> str:
        return self._name

    def Free(self) -> None:
        """Predefined handlers cannot be freed; like MPICH, this is a no-op."""


ERRHANDLER_NULL: Final = Errhandler("ERRHANDLER_NULL")
ERRORS_RETURN: Final = Errhandler("ERRORS_RETURN")
ERRORS_ARE_FATAL: Final = Errhandler("ERRORS_ARE_FATAL")
ERRORS_ABORT: Final = Errhandler("ERRORS_ABORT")

# -- error classes (MPICH's numbers) -----------------------------------------

SUCCESS: Final = 0
ERR_BUFFER: Final = 1
ERR_COUNT: Final = 2
ERR_TYPE: Final = 3
ERR_TAG: Final = 4
ERR_COMM: Final = 5
ERR_RANK: Final = 6
ERR_ROOT: Final = 7
ERR_GROUP: Final = 8
ERR_OP: Final = 9
ERR_TOPOLOGY: Final = 10
ERR_DIMS: Final = 11
ERR_ARG: Final = 12
ERR_UNKNOWN: Final = 13
ERR_TRUNCATE: Final = 14
ERR_OTHER: Final = 15
ERR_INTERN: Final = 16
ERR_IN_STATUS: Final = 17
ERR_PENDING: Final = 18
ERR_REQUEST: Final = 19
ERR_INFO: Final = 28
ERR_NO_MEM: Final = 34
ERR_NOT_SAME: Final = 35
ERR_SPAWN: Final = 42
ERR_UNSUPPORTED_OPERATION: Final = 44
ERR_WIN: Final = 45
ERR_KEYVAL: Final = 48
ERR_SIZE: Final = 51
ERR_DISP: Final = 52
ERR_PROC_ABORTED: Final = 76
ERR_VALUE_TOO_LARGE: Final = 77
ERR_ERRHANDLER: Final = 80
ERR_LASTCODE: Final = 1073741823

# name and MPICH's text for each class, for str(MPI.Exception) and Get_error_string
_ERRORS: dict[int, tuple[str, str]] = {
    SUCCESS: ("MPI_SUCCESS", "No MPI error"),
    ERR_BUFFER: ("MPI_ERR_BUFFER", "Invalid buffer pointer"),
    ERR_COUNT: ("MPI_ERR_COUNT", "Invalid count"),
    ERR_TYPE: ("MPI_ERR_TYPE", "Invalid datatype"),
    ERR_TAG: ("MPI_ERR_TAG", "Invalid tag"),
    ERR_COMM: ("MPI_ERR_COMM", "Invalid communicator"),
    ERR_RANK: ("MPI_ERR_RANK", "Invalid rank"),
    ERR_ROOT: ("MPI_ERR_ROOT", "Invalid root"),
    ERR_GROUP: ("MPI_ERR_GROUP", "Invalid group"),
    ERR_OP: ("MPI_ERR_OP", "Invalid MPI_Op"),
    ERR_TOPOLOGY: ("MPI_ERR_TOPOLOGY", "Invalid topology"),
    ERR_DIMS: ("MPI_ERR_DIMS", "Invalid dimension argument"),
    ERR_ARG: ("MPI_ERR_ARG", "Invalid argument"),
    ERR_UNKNOWN: ("MPI_ERR_UNKNOWN", "Unknown error.  Please file a bug report."),
    ERR_TRUNCATE: ("MPI_ERR_TRUNCATE", "Message truncated"),
    ERR_OTHER: ("MPI_ERR_OTHER", "Other MPI error"),
    ERR_INTERN: ("MPI_ERR_INTERN", "Internal MPI error!"),
    ERR_IN_STATUS: ("MPI_ERR_IN_STATUS",
                    "See the MPI_ERROR field in MPI_Status for the error code"),
    ERR_PENDING: ("MPI_ERR_PENDING", "Pending request (no error)"),
    ERR_REQUEST: ("MPI_ERR_REQUEST", "Invalid MPI_Request"),
    ERR_INFO: ("MPI_ERR_INFO", "Invalid MPI_Info"),
    ERR_NO_MEM: ("MPI_ERR_NO_MEM", "Unable to allocate memory for MPI_Alloc_mem"),
    ERR_NOT_SAME: ("MPI_ERR_NOT_SAME", "Inconsistent arguments to collective routine"),
    ERR_SPAWN: ("MPI_ERR_SPAWN", "Error in spawn call"),
    ERR_UNSUPPORTED_OPERATION: ("MPI_ERR_UNSUPPORTED_OPERATION", "Unsupported operation"),
    ERR_WIN: ("MPI_ERR_WIN", "Invalid MPI_Win"),
    ERR_KEYVAL: ("MPI_ERR_KEYVAL", "Invalid keyval"),
    ERR_SIZE: ("MPI_ERR_SIZE", "Invalid size argument in RMA call"),
    ERR_DISP: ("MPI_ERR_DISP", "Invalid displacement argument in RMA call"),
    ERR_PROC_ABORTED: ("MPI_ERR_PROC_ABORTED", "Process was aborted"),
    ERR_VALUE_TOO_LARGE: ("MPI_ERR_VALUE_TOO_LARGE", "Value is too large to store"),
    ERR_ERRHANDLER: ("MPI_ERR_ERRHANDLER", "Invalid errhandler"),
    ERR_LASTCODE: ("MPI_ERR_LASTCODE", "Last error code"),
}


def Get_error_string(errorcode: int) -> str:
    """MPICH's text for an error class or code (``MPI.Get_error_string``)."""
    entry = _ERRORS.get(int(errorcode))
    return entry[1] if entry else f"Unknown error code {int(errorcode)}"


def Get_error_class(errorcode: int) -> int:
    """The error class of an error code: shoal's codes are their own classes."""
    return int(errorcode)


def error_name(errorcode: int) -> str:
    """The C name of an error class, such as ``MPI_ERR_TRUNCATE``."""
    entry = _ERRORS.get(int(errorcode))
    return entry[0] if entry else f"MPI_ERR_{int(errorcode)}"


class Exception(CommunicationError, builtins.RuntimeError):
    """``MPI.Exception``: an MPI error class plus shoal's explanation.

    Compatible with mpi4py's: ``Exception(ierr)``, ``error_class``,
    ``error_code``, ``error_string``, the ``Get_*`` methods, ``int(e)`` and
    comparisons with ints (``e == MPI.ERR_TRUNCATE``).  It is also a
    :class:`RuntimeError`, like mpi4py's, and a shoal
    :class:`~shoal.errors.CommunicationError`.  ``str(e)`` reads like
    ``MPI_ERR_TRUNCATE: Message truncated: <what shoal saw>``.
    """

    def __init__(self, ierr: int = SUCCESS, detail: str = "", *,
                 where: str | None = None, remote_traceback: str | None = None) -> None:
        code = int(ierr)
        super().__init__(detail, where=where, remote_traceback=remote_traceback)
        # args is what pickle passes back to __init__: keep it mpi4py's (ierr,)
        # and let the instance __dict__ carry detail, where and the traceback.
        self.args = (code,)
        self._code = code
        self.detail = detail

    @property
    def error_code(self) -> int:
        return self._code

    @property
    def error_class(self) -> int:
        return Get_error_class(self._code)

    @property
    def error_string(self) -> str:
        return Get_error_string(self._code)

    def Get_error_code(self) -> int:
        return self.error_code

    def Get_error_class(self) -> int:
        return self.error_class

    def Get_error_string(self) -> str:
        return self.error_string

    def __str__(self) -> str:
        text = f"{error_name(self._code)}: {self.error_string}"
        if self.detail:
            text = f"{text}: {self.detail}"
        if self.where:
            text = f"{text} (at {self.where})"
        if self.remote_traceback:
            text = f"{text}\n\nRemote traceback:\n{self.remote_traceback}"
        return text

    def __repr__(self) -> str:
        return f"MPI.Exception({self._code})"

    def __int__(self) -> int:
        return self._code

    def __index__(self) -> int:
        return self._code

    def __bool__(self) -> bool:
        return self._code != SUCCESS

    def __hash__(self) -> int:
        return hash(self._code)

    @staticmethod
    def _other(other: object) -> int | None:
        if isinstance(other, Exception):
            return other._code
        if isinstance(other, int):
            return other
        return None

    def __eq__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code == code

    def __ne__(self, other: object) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code != code

    def __lt__(self, other: Any) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code < code

    def __le__(self, other: Any) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code <= code

    def __gt__(self, other: Any) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code > code

    def __ge__(self, other: Any) -> bool:
        code = self._other(other)
        return NotImplemented if code is None else self._code >= code


# Where mpi4py raises a builtin error (ValueError for a bad count, TypeError for
# something that is not a buffer, BufferError for a read-only receive buffer),
# shoal raises these: an MPI.Exception with the right error class that is also
# that builtin, so ``except ValueError`` and ``except MPI.Exception`` both work.


class ValueErrorException(Exception, builtins.ValueError):
    """``MPI.Exception`` that is also a :class:`ValueError`."""


class TypeErrorException(Exception, builtins.TypeError):
    """``MPI.Exception`` that is also a :class:`TypeError`."""


class BufferErrorException(Exception, builtins.BufferError):
    """``MPI.Exception`` that is also a :class:`BufferError`."""


# mpi4py's names only (shoal.spmd.mpi star-imports this); TAG_UB_VALUE,
# error_name and the *ErrorException classes are imported by name.
__all__ = [
    "ANY_SOURCE", "ANY_TAG", "PROC_NULL", "ROOT", "UNDEFINED",
    "TAG_UB", "IO", "WTIME_IS_GLOBAL", "UNIVERSE_SIZE", "LASTUSEDCODE", "APPNUM",
    "KEYVAL_INVALID",
    "IDENT", "CONGRUENT", "SIMILAR", "UNEQUAL",
    "COMM_TYPE_SHARED", "COMM_TYPE_HW_GUIDED", "COMM_TYPE_HW_UNGUIDED",
    "COMM_TYPE_RESOURCE_GUIDED",
    "THREAD_SINGLE", "THREAD_FUNNELED", "THREAD_SERIALIZED", "THREAD_MULTIPLE",
    "GRAPH", "CART", "DIST_GRAPH", "ORDER_C", "ORDER_F",
    "MAX_PROCESSOR_NAME", "MAX_ERROR_STRING", "MAX_OBJECT_NAME", "MAX_PORT_NAME",
    "MAX_INFO_KEY", "MAX_INFO_VAL", "MAX_LIBRARY_VERSION_STRING", "BSEND_OVERHEAD",
    "VERSION", "SUBVERSION",
    "IN_PLACE", "BOTTOM", "BUFFER_AUTOMATIC",
    "Errhandler", "ERRHANDLER_NULL", "ERRORS_RETURN", "ERRORS_ARE_FATAL", "ERRORS_ABORT",
    "SUCCESS", "ERR_BUFFER", "ERR_COUNT", "ERR_TYPE", "ERR_TAG", "ERR_COMM", "ERR_RANK",
    "ERR_ROOT", "ERR_GROUP", "ERR_OP", "ERR_TOPOLOGY", "ERR_DIMS", "ERR_ARG", "ERR_UNKNOWN",
    "ERR_TRUNCATE", "ERR_OTHER", "ERR_INTERN", "ERR_IN_STATUS", "ERR_PENDING",
    "ERR_REQUEST", "ERR_INFO", "ERR_NO_MEM", "ERR_NOT_SAME", "ERR_SPAWN",
    "ERR_UNSUPPORTED_OPERATION", "ERR_WIN", "ERR_KEYVAL", "ERR_SIZE", "ERR_DISP",
    "ERR_PROC_ABORTED", "ERR_VALUE_TOO_LARGE", "ERR_ERRHANDLER", "ERR_LASTCODE",
    "Exception", "Get_error_string", "Get_error_class",
]
