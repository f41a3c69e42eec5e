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
from shoal.spmd.handles import Handle, Record

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

# MPICH's numbers for the rest of mpi4py's integer constants (files, windows, Fortran
# status indices, type classes): shoal offers no files or windows, but the names exist.
DISPLACEMENT_CURRENT: Final = -54278278
DISP_CUR: Final = -54278278
F_ERROR: Final = 4
F_SOURCE: Final = 2
F_STATUS_SIZE: Final = 5
F_TAG: Final = 3
LOCK_EXCLUSIVE: Final = 234
LOCK_SHARED: Final = 235
MAX_DATAREP_STRING: Final = 128
MAX_PSET_NAME_LEN: Final = 256
MAX_STRINGTAG_LEN: Final = 256
MODE_APPEND: Final = 128
MODE_CREATE: Final = 1
MODE_DELETE_ON_CLOSE: Final = 16
MODE_EXCL: Final = 64
MODE_NOCHECK: Final = 1024
MODE_NOPRECEDE: Final = 8192
MODE_NOPUT: Final = 4096
MODE_NOSTORE: Final = 2048
MODE_NOSUCCEED: Final = 16384
MODE_RDONLY: Final = 2
MODE_RDWR: Final = 8
MODE_SEQUENTIAL: Final = 256
MODE_UNIQUE_OPEN: Final = 32
MODE_WRONLY: Final = 4
SEEK_CUR: Final = 602
SEEK_END: Final = 604
SEEK_SET: Final = 600
TYPECLASS_COMPLEX: Final = 3
TYPECLASS_INTEGER: Final = 2
TYPECLASS_LOGICAL: Final = 4
TYPECLASS_REAL: Final = 1
WIN_BASE: Final = 1711276033
WIN_CREATE_FLAVOR: Final = 1711276039
WIN_DISP_UNIT: Final = 1711276037
WIN_FLAVOR: Final = 1711276039
WIN_FLAVOR_ALLOCATE: Final = 2
WIN_FLAVOR_CREATE: Final = 1
WIN_FLAVOR_DYNAMIC: Final = 3
WIN_FLAVOR_SHARED: Final = 4
WIN_MODEL: Final = 1711276041
WIN_SEPARATE: Final = 1
WIN_SIZE: Final = 1711276035
WIN_UNIFIED: Final = 2

#: The MPI standard version shoal's facade follows (mpi4py's MPI.VERSION).
VERSION: Final = 4
SUBVERSION: Final = 1


class _Sentinel:
    """A named singleton such as ``MPI.IN_PLACE`` (each has its own type, as in mpi4py).

    It pickles by name, so it stays the same object after a round trip; it
    compares and hashes like mpi4py's value (``int(MPI.IN_PLACE)``), and
    calling its type gives the singleton back.
    """

    __slots__ = ()
    _name: str
    _value: int
    _instance: _Sentinel

    def __new__(cls) -> _Sentinel:
        return cls._instance

    def __repr__(self) -> str:
        return self._name

    def __int__(self) -> int:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Sentinel):
            return self is other
        if isinstance(other, int) and not isinstance(other, bool):
            return other == self._value
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:
        return self._name


def _sentinel(typename: str, name: str, value: int, index: bool = False) -> Any:
    namespace: dict[str, Any] = {"__slots__": (), "_name": name, "_value": value,
                                 "__module__": "shoal.spmd.constants"}
    if index:
        namespace["__index__"] = lambda self: self._value
    cls: Any = type(typename, (_Sentinel,), namespace)
    instance: Any = object.__new__(cls)
    cls._instance = instance
    return instance


IN_PLACE: Final = _sentinel("InPlaceType", "IN_PLACE", -1)
BOTTOM: Final = _sentinel("BottomType", "BOTTOM", 0, index=True)
BUFFER_AUTOMATIC: Final = _sentinel("BufferAutomaticType", "BUFFER_AUTOMATIC", 0)


class _ErrhandlerRecord(Record):
    __slots__ = ("name", "function")

    def __init__(self, name: str, function: Any = None) -> None:
        super().__init__()
        self.name = name
        self.function = function


class Errhandler(Handle):
    """``MPI.Errhandler``: the predefined handlers, and handlers made by
    ``Comm.Create_errhandler``.

    shoal reports errors by raising :class:`Exception`, which is what mpi4py
    does under ``ERRORS_RETURN`` (its default); a handler a program sets is
    kept and handed back, and ``Comm.Call_errhandler`` calls a user one.
    """

    __slots__ = ()
    __module__ = "shoal.MPI"
    _info: _ErrhandlerRecord

    def __repr__(self) -> str:
        return f"<MPI.Errhandler {self._info.name}>"

    def Free(self) -> None:
        if self._info is _ERRHANDLER_NULL:
            raise Exception(ERR_ERRHANDLER, "this is MPI.ERRHANDLER_NULL")
        if not self._const:
            self._info = _ERRHANDLER_NULL

    def _predefined(self) -> bool:
        return self._info.function is None


_ERRHANDLER_NULL = _ErrhandlerRecord("ERRHANDLER_NULL")
Errhandler._NULL = _ERRHANDLER_NULL
Errhandler._FAMILY = Errhandler

ERRHANDLER_NULL: Final = Errhandler._define(_ERRHANDLER_NULL, "ERRHANDLER_NULL")
ERRORS_RETURN: Final = Errhandler._define(_ErrhandlerRecord("ERRORS_RETURN"), "ERRORS_RETURN")
ERRORS_ARE_FATAL: Final = Errhandler._define(_ErrhandlerRecord("ERRORS_ARE_FATAL"),
                                             "ERRORS_ARE_FATAL")
ERRORS_ABORT: Final = Errhandler._define(_ErrhandlerRecord("ERRORS_ABORT"), "ERRORS_ABORT")

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
ERR_ABI: Final = 1073741823
ERR_ACCESS: Final = 20
ERR_AMODE: Final = 21
ERR_ASSERT: Final = 53
ERR_BAD_FILE: Final = 22
ERR_BASE: Final = 46
ERR_CONVERSION: Final = 23
ERR_DUP_DATAREP: Final = 24
ERR_FILE: Final = 27
ERR_FILE_EXISTS: Final = 25
ERR_FILE_IN_USE: Final = 26
ERR_INFO_KEY: Final = 29
ERR_INFO_NOKEY: Final = 31
ERR_INFO_VALUE: Final = 30
ERR_IO: Final = 32
ERR_LOCKTYPE: Final = 47
ERR_NAME: Final = 33
ERR_NO_SPACE: Final = 36
ERR_NO_SUCH_FILE: Final = 37
ERR_PORT: Final = 38
ERR_PROC_FAILED: Final = 13
ERR_PROC_FAILED_PENDING: Final = 13
ERR_QUOTA: Final = 39
ERR_READ_ONLY: Final = 40
ERR_REVOKED: Final = 13
ERR_RMA_ATTACH: Final = 56
ERR_RMA_CONFLICT: Final = 49
ERR_RMA_FLAVOR: Final = 58
ERR_RMA_RANGE: Final = 55
ERR_RMA_SHARED: Final = 57
ERR_RMA_SYNC: Final = 50
ERR_SERVICE: Final = 41
ERR_SESSION: Final = 75
ERR_UNSUPPORTED_DATAREP: Final = 43

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
    ERR_ACCESS: ("MPI_ERR_ACCESS", 'Access denied to file'),
    ERR_AMODE: ("MPI_ERR_AMODE", 'Invalid amode value in MPI_File_open '),
    ERR_BAD_FILE: ("MPI_ERR_BAD_FILE", 'Invalid file name'),
    ERR_CONVERSION: ("MPI_ERR_CONVERSION",
                     "An error occurred in a user-defined data conversion function"),
    ERR_DUP_DATAREP: ("MPI_ERR_DUP_DATAREP", "The requested datarep name has already been "
                      "specified to MPI_REGISTER_DATAREP"),
    ERR_FILE_EXISTS: ("MPI_ERR_FILE_EXISTS", 'File exists'),
    ERR_FILE_IN_USE: ("MPI_ERR_FILE_IN_USE", 'File in use by some process'),
    ERR_FILE: ("MPI_ERR_FILE", 'Invalid MPI_File'),
    ERR_INFO_KEY: ("MPI_ERR_INFO_KEY", 'Invalid key for MPI_Info '),
    ERR_INFO_VALUE: ("MPI_ERR_INFO_VALUE", 'Invalid MPI_Info value '),
    ERR_INFO_NOKEY: ("MPI_ERR_INFO_NOKEY", 'MPI_Info key is not defined '),
    ERR_IO: ("MPI_ERR_IO", 'Other I/O error '),
    ERR_NAME: ("MPI_ERR_NAME", 'Invalid service name (see MPI_Publish_name)'),
    ERR_NO_SPACE: ("MPI_ERR_NO_SPACE", 'Not enough space for file '),
    ERR_NO_SUCH_FILE: ("MPI_ERR_NO_SUCH_FILE", 'File does not exist'),
    ERR_PORT: ("MPI_ERR_PORT", 'Invalid port'),
    ERR_QUOTA: ("MPI_ERR_QUOTA", 'Quota exceeded for files'),
    ERR_READ_ONLY: ("MPI_ERR_READ_ONLY", 'Read-only file or filesystem name'),
    ERR_SERVICE: ("MPI_ERR_SERVICE", 'Attempt to lookup an unknown service name '),
    ERR_UNSUPPORTED_DATAREP: ("MPI_ERR_UNSUPPORTED_DATAREP",
                              "Unsupported datarep passed to MPI_File_set_view "),
    ERR_BASE: ("MPI_ERR_BASE", 'Invalid base address'),
    ERR_LOCKTYPE: ("MPI_ERR_LOCKTYPE", 'Invalid locktype argument'),
    ERR_RMA_CONFLICT: ("MPI_ERR_RMA_CONFLICT", 'Conflicting accesses to window '),
    ERR_RMA_SYNC: ("MPI_ERR_RMA_SYNC", 'Wrong synchronization of RMA calls '),
    ERR_ASSERT: ("MPI_ERR_ASSERT", 'Invalid assert argument'),
    ERR_RMA_RANGE: ("MPI_ERR_RMA_RANGE", 'Target memory is not contained within the window'),
    ERR_RMA_ATTACH: ("MPI_ERR_RMA_ATTACH", 'Memory cannot be attached'),
    ERR_RMA_SHARED: ("MPI_ERR_RMA_SHARED", 'Memory cannot be shared'),
    ERR_RMA_FLAVOR: ("MPI_ERR_RMA_FLAVOR", 'Incorrect window flavor'),
    ERR_SESSION: ("MPI_ERR_SESSION", 'Invalid MPI_Session handle'),
    ERR_LASTCODE: ("MPI_ERR_LASTCODE", "Last error code"),
}


# Error classes and codes a program adds (MPI_Add_error_class ...): number -> its class,
# and number -> its string.  New numbers follow ERR_LASTCODE, as in MPICH.
_added_class: dict[int, int] = {}
_added_string: dict[int, str] = {}
_last_used = [ERR_LASTCODE]


def last_used_code() -> int:
    """``COMM_WORLD.Get_attr(LASTUSEDCODE)``: the largest error class or code in use."""
    return _last_used[0]


def Get_error_string(errorcode: int) -> str:
    """MPICH's text for an error class or code (``MPI.Get_error_string``)."""
    code = int(errorcode)
    if code in _added_string:
        return _added_string[code]
    entry = _ERRORS.get(code)
    return entry[1] if entry else f"Unknown error code {code}"


def Get_error_class(errorcode: int) -> int:
    """The error class of an error code: shoal's own codes are their own classes."""
    code = int(errorcode)
    if code in _added_class:
        return _added_class[code]
    if code < SUCCESS:
        return ERR_UNKNOWN
    return code


def Add_error_class() -> int:
    """A new error class, after every class and code in use."""
    _last_used[0] += 1
    code = _last_used[0]
    _added_class[code] = code
    _added_string[code] = ""
    return code


def Remove_error_class(errorclass: int) -> None:
    code = int(errorclass)
    if _added_class.get(code) != code:
        raise Exception(ERR_ARG, f"error class {code} was not added by Add_error_class")
    if any(c != code and k == code for c, k in _added_class.items()):
        raise Exception(ERR_OTHER, f"error class {code} still has error codes: remove them "
                        "first")
    if _added_string.get(code):
        raise Exception(ERR_OTHER, f"error class {code} still has an error string: remove "
                        "it first")
    del _added_class[code]
    _added_string.pop(code, None)


def Add_error_code(errorclass: int) -> int:
    """A new error code in ``errorclass``."""
    errclass = int(errorclass)
    if errclass not in _ERRORS and _added_class.get(errclass) != errclass:
        raise Exception(ERR_ARG, f"{errclass} is not an error class")
    _last_used[0] += 1
    code = _last_used[0]
    _added_class[code] = errclass
    _added_string[code] = ""
    return code


def Remove_error_code(errorcode: int) -> None:
    code = int(errorcode)
    if code not in _added_class or _added_class[code] == code:
        raise Exception(ERR_ARG, f"error code {code} was not added by Add_error_code")
    if _added_string.get(code):
        raise Exception(ERR_OTHER, f"error code {code} still has an error string: remove it "
                        "first")
    del _added_class[code]
    _added_string.pop(code, None)


def Add_error_string(errorcode: int, string: str) -> None:
    code = int(errorcode)
    if code not in _added_class:
        raise Exception(ERR_ARG, f"{code} is not an error class or code added by this "
                        "program")
    if len(string) > MAX_ERROR_STRING:
        raise Exception(ERR_ARG, f"error strings have at most {MAX_ERROR_STRING} characters")
    _added_string[code] = str(string)


def Remove_error_string(errorcode: int) -> None:
    code = int(errorcode)
    if code not in _added_string:
        raise Exception(ERR_ARG, f"{code} has no error string added by this program")
    _added_string[code] = ""


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
        if code < SUCCESS:
            code = ERR_UNKNOWN
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
        if not (self.detail or self.where or self.remote_traceback):
            return self.error_string  # mpi4py's str() of an error code
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


class KeyErrorException(Exception, builtins.KeyError):
    """``MPI.Exception`` that is also a :class:`KeyError` (an unknown type code)."""


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
    "Exception", "Get_error_string", "Get_error_class", "Add_error_class",
    "Remove_error_class", "Add_error_code", "Remove_error_code", "Add_error_string",
    "Remove_error_string",
    "DISPLACEMENT_CURRENT",
    "DISP_CUR",
    "ERR_ABI",
    "ERR_ACCESS",
    "ERR_AMODE",
    "ERR_ASSERT",
    "ERR_BAD_FILE",
    "ERR_BASE",
    "ERR_CONVERSION",
    "ERR_DUP_DATAREP",
    "ERR_FILE",
    "ERR_FILE_EXISTS",
    "ERR_FILE_IN_USE",
    "ERR_INFO_KEY",
    "ERR_INFO_NOKEY",
    "ERR_INFO_VALUE",
    "ERR_IO",
    "ERR_LOCKTYPE",
    "ERR_NAME",
    "ERR_NO_SPACE",
    "ERR_NO_SUCH_FILE",
    "ERR_PORT",
    "ERR_PROC_FAILED",
    "ERR_PROC_FAILED_PENDING",
    "ERR_QUOTA",
    "ERR_READ_ONLY",
    "ERR_REVOKED",
    "ERR_RMA_ATTACH",
    "ERR_RMA_CONFLICT",
    "ERR_RMA_FLAVOR",
    "ERR_RMA_RANGE",
    "ERR_RMA_SHARED",
    "ERR_RMA_SYNC",
    "ERR_SERVICE",
    "ERR_SESSION",
    "ERR_UNSUPPORTED_DATAREP",
    "F_ERROR",
    "F_SOURCE",
    "F_STATUS_SIZE",
    "F_TAG",
    "LOCK_EXCLUSIVE",
    "LOCK_SHARED",
    "MAX_DATAREP_STRING",
    "MAX_PSET_NAME_LEN",
    "MAX_STRINGTAG_LEN",
    "MODE_APPEND",
    "MODE_CREATE",
    "MODE_DELETE_ON_CLOSE",
    "MODE_EXCL",
    "MODE_NOCHECK",
    "MODE_NOPRECEDE",
    "MODE_NOPUT",
    "MODE_NOSTORE",
    "MODE_NOSUCCEED",
    "MODE_RDONLY",
    "MODE_RDWR",
    "MODE_SEQUENTIAL",
    "MODE_UNIQUE_OPEN",
    "MODE_WRONLY",
    "SEEK_CUR",
    "SEEK_END",
    "SEEK_SET",
    "TYPECLASS_COMPLEX",
    "TYPECLASS_INTEGER",
    "TYPECLASS_LOGICAL",
    "TYPECLASS_REAL",
    "WIN_BASE",
    "WIN_CREATE_FLAVOR",
    "WIN_DISP_UNIT",
    "WIN_FLAVOR",
    "WIN_FLAVOR_ALLOCATE",
    "WIN_FLAVOR_CREATE",
    "WIN_FLAVOR_DYNAMIC",
    "WIN_FLAVOR_SHARED",
    "WIN_MODEL",
    "WIN_SEPARATE",
    "WIN_SIZE",
    "WIN_UNIFIED",
]
