"""MPI's execution environment: start and end, thread levels, what runs us, clocks.

The functions mirror mpi4py's (``MPI.Init``, ``Init_thread``, ``Finalize``,
``Is_initialized``, ``Query_thread``, ``get_vendor``, ``Wtime`` ...) and so does the
runtime configuration, ``mpi4py.rc`` (:data:`rc` here; ``shoal.compat.mpi4py`` re-exports
it): importing the MPI namespace initialises MPI unless ``rc.initialize`` is false, with
``Init_thread(rc.thread_level)`` when ``rc.threads`` is true; ``rc.finalize`` (default:
whether the import initialised) finalises at exit; ``rc.errors`` picks the error handler of
``COMM_WORLD`` and ``COMM_SELF``.  As in mpi4py, ``MPI4PY_RC_<NAME>`` environment variables
override the rc attributes, and an unexpected value is a ``RuntimeWarning``, not an error.

"Initialised" is a state of this process, not of a connection: the engine still joins
the job's transport on first use (:func:`shoal.spmd.world.engine`), but from ``Init`` on
the launcher knows this rank takes part (:func:`shoal.spmd.world.mark_initialized`).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shoal.spmd import objcodec, world
from shoal.spmd.constants import (
    ERR_ARG,
    ERR_OTHER,
    ERRORS_ABORT,
    ERRORS_ARE_FATAL,
    ERRORS_RETURN,
    THREAD_FUNNELED,
    THREAD_MULTIPLE,
    THREAD_SERIALIZED,
    THREAD_SINGLE,
)
from shoal.spmd.constants import Exception as MPIException

# The thread level the engine gives: it is thread-safe (one lock guards its state, and
# waiting threads release it), so any thread may call MPI at any time.
ENGINE_THREAD_LEVEL = THREAD_MULTIPLE

# MPI_VERSION, MPI_SUBVERSION of the standard whose Python binding (mpi4py 4.1) is mirrored.
MPI_VERSION = (4, 1)

_THREAD_LEVELS = {"single": THREAD_SINGLE, "funneled": THREAD_FUNNELED,
                  "serialized": THREAD_SERIALIZED, "multiple": THREAD_MULTIPLE}
_ERRORS = ("default", "exception", "abort", "fatal")
_TRUE_WORDS = ("1", "y", "yes", "on", "true")
_FALSE_WORDS = ("0", "n", "no", "off", "false")


class Rc:
    """Runtime configuration options: ``mpi4py.rc`` (set them before importing ``MPI``).

    Attributes: ``initialize`` (initialise MPI at import, default True), ``threads``
    (initialise with thread support, True), ``thread_level`` ("multiple", "serialized",
    "funneled" or "single"), ``finalize`` (finalise at exit; None: when the import
    initialised), ``fast_reduce``, ``recv_mprobe``, ``irecv_bufsz`` and ``errors``
    ("exception", "default", "abort" or "fatal").
    """

    initialize: Any = True
    threads: Any = True
    thread_level: Any = "multiple"
    finalize: Any = None
    fast_reduce: Any = True
    recv_mprobe: Any = True
    irecv_bufsz: Any = 32768
    errors: Any = "exception"

    def __init__(self, **kwargs: Any) -> None:
        self(**kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if not hasattr(self, name):
            raise TypeError(f"object has no attribute {name!r}")
        super().__setattr__(name, value)

    def __call__(self, **kwargs: Any) -> None:
        for key in kwargs:
            if not hasattr(self, key):
                raise TypeError(f"unexpected argument {key!r}")
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return "<mpi4py.rc>"


rc = Rc()


@dataclass
class Options:
    """What :data:`rc` (and ``MPI4PY_RC_*``) said when the MPI namespace was imported."""

    initialize: bool = True
    threads: bool = True
    thread_level: int = THREAD_MULTIPLE
    finalize: bool = True
    fast_reduce: bool = True
    recv_mprobe: bool = True
    irecv_bufsz: int = 32768
    errors: str = "exception"


options = Options()


def _warn(name: str, value: Any) -> None:
    warnings.warn(f"mpi4py.rc.{name}: unexpected value {value!r}", RuntimeWarning,
                  stacklevel=4)


def _option(name: str, default: Any) -> Any:
    """``rc.<name>``, or ``MPI4PY_RC_<NAME>`` from the environment (which also sets rc)."""
    text = os.environ.get(f"MPI4PY_RC_{name.upper()}")
    if text is None:
        return getattr(rc, name, default)
    word = text.strip().lower()
    value: Any
    if word.isdigit() and type(default) is int:
        value = int(word)
    elif word in _TRUE_WORDS:
        value = True
    elif word in _FALSE_WORDS:
        value = False
    else:
        value = word
    setattr(rc, name, value)
    return value


def _flag(name: str, default: bool) -> bool:
    value = _option(name, default)
    if value in (True, "yes"):
        return True
    if value in (False, "no"):
        return False
    _warn(name, value)
    return default


def read_options() -> Options:
    """Read :data:`rc` (and ``MPI4PY_RC_*``) into :data:`options`, as mpi4py does at import."""
    global options
    fresh = Options()
    fresh.initialize = _flag("initialize", True)
    fresh.threads = _flag("threads", True)
    level = _option("thread_level", "multiple")
    if level in _THREAD_LEVELS:
        fresh.thread_level = _THREAD_LEVELS[level]
    else:
        _warn("thread_level", level)
    finalize = _option("finalize", None)
    if finalize is None:
        fresh.finalize = fresh.initialize
    elif finalize in (True, False, "yes", "no"):
        fresh.finalize = finalize in (True, "yes")
    else:
        _warn("finalize", finalize)
        fresh.finalize = fresh.initialize
    fresh.fast_reduce = _flag("fast_reduce", True)
    fresh.recv_mprobe = _flag("recv_mprobe", True)
    bufsz = _option("irecv_bufsz", 32768)
    if type(bufsz) is int and bufsz >= 0:
        fresh.irecv_bufsz = bufsz
    else:
        _warn("irecv_bufsz", bufsz)
    errors = _option("errors", "exception")
    if errors in _ERRORS:
        fresh.errors = errors
    else:
        _warn("errors", errors)
    options = fresh
    return fresh


class _State:
    initialized = False        # by Init/Init_thread or at import
    provided = THREAD_SINGLE   # the thread level granted
    main_thread: int | None = None
    abort_status = 0           # mpi4py.run: Abort with this at exit when not 0
    comms: tuple[Any, ...] = ()   # COMM_SELF and COMM_WORLD, for rc.errors
    atexit_registered = False


_state = _State()


def _error(text: str, error_class: int = ERR_OTHER) -> MPIException:
    return MPIException(error_class, text)


def _initialize(required: int) -> int:
    if _state.initialized or world.is_initialized():
        raise _error("Cannot call MPI_INIT or MPI_INIT_THREAD more than once")
    if world.is_finalized():
        raise _error("MPI was finalized; it cannot be initialized again")
    _state.initialized = True
    _state.provided = max(THREAD_SINGLE, min(int(required), ENGINE_THREAD_LEVEL))
    _state.main_thread = threading.get_ident()
    world.mark_initialized()
    _set_errhandlers()
    if not _state.atexit_registered:
        _state.atexit_registered = True
        atexit.register(_at_exit)
    return _state.provided


def _set_errhandlers() -> None:
    # "default" is MPI's own default for communicators, as on MPICH: errors are fatal.
    handler = {"exception": ERRORS_RETURN, "abort": ERRORS_ABORT, "fatal": ERRORS_ARE_FATAL,
               "default": ERRORS_ARE_FATAL}[options.errors]
    for comm in _state.comms:
        comm.Set_errhandler(handler)


def _at_exit() -> None:
    if not _state.initialized or world.is_finalized():
        return
    if _state.abort_status:
        for comm in _state.comms[-1:]:
            comm.Abort(_state.abort_status)
    if options.finalize:
        world.finalize()


def bootstrap(comms: Iterable[Any]) -> None:
    """What importing the MPI namespace does: read rc, then initialise unless it says not to.

    ``comms`` are ``COMM_SELF`` and ``COMM_WORLD``, whose error handler ``rc.errors`` sets.
    """
    _state.comms = tuple(comms)
    read_options()
    objcodec.read_environment()
    if _state.initialized:
        return
    if world.is_initialized():  # the engine was already in use (klyng's API, say)
        _state.initialized, _state.provided = True, ENGINE_THREAD_LEVEL
        _state.main_thread = threading.get_ident()
        options.finalize = False  # as mpi4py: whoever initialised finalises
        return
    if options.initialize:
        _initialize(options.thread_level if options.threads else THREAD_SINGLE)


def Init() -> None:
    """Initialize MPI (when ``rc.initialize`` was false): a second call is an error."""
    _initialize(THREAD_SINGLE)


def Init_thread(required: int = THREAD_MULTIPLE) -> int:
    """Initialize MPI asking for thread level ``required``; return the level provided."""
    return _initialize(required)


def Finalize() -> None:
    """Finalize MPI: flush what this rank sent and leave the job's communication."""
    if world.is_finalized():
        raise _error("MPI_Finalize was already called")
    if not Is_initialized():
        raise _error("MPI_Finalize called before MPI_Init")
    world.finalize()


def Is_initialized() -> bool:
    return _state.initialized or world.is_initialized()


def Is_finalized() -> bool:
    return world.is_finalized()


def Query_thread() -> int:
    """The thread level provided (what ``Init_thread`` returned)."""
    return _state.provided


def Is_thread_main() -> bool:
    """Whether this thread initialised MPI."""
    main = _state.main_thread
    if main is None:
        return threading.current_thread() is threading.main_thread()
    return threading.get_ident() == main


def set_abort_status(status: Any) -> None:
    """Make the process call ``COMM_WORLD.Abort(status)`` at exit (for ``mpi4py.run``)."""
    if status is None:
        status = 0
    elif not isinstance(status, int):
        status = 1
    _state.abort_status = int(status)


def get_vendor() -> tuple[str, tuple[int, int, int]]:
    """The implementation's name and version: ``("shoal", (major, minor, micro))``."""
    from shoal._version import __version__

    numbers = [int(part) if part.isdigit() else 0 for part in __version__.split(".")[:3]]
    major, minor, micro = (*numbers, 0, 0, 0)[:3]
    return ("shoal", (major, minor, micro))


def Get_version() -> tuple[int, int]:
    return MPI_VERSION


def Get_library_version() -> str:
    from shoal._version import __version__

    return f"shoal {__version__} (shared-memory runtime, mpi4py-compatible)"


def Get_processor_name() -> str:
    import socket

    return socket.gethostname()


def Get_hw_resource_info() -> Any:
    """An ``Info`` about this processor's hardware: empty, as on MPICH."""
    import sys

    info = getattr(sys.modules.get("shoal.spmd.mpi"), "Info", None)
    if info is None:
        raise NotImplementedError("Get_hw_resource_info needs MPI.Info, which shoal lacks")
    return info.Create()


def Wtime() -> float:
    return time.perf_counter()


def Wtick() -> float:
    return float(time.get_clock_info("perf_counter").resolution)


def Pcontrol(level: int) -> None:
    """Profiling control: accepted (levels 0, 1 and 2) and ignored, as without a profiler."""
    if not 0 <= int(level) <= 2:
        raise _error(f"Pcontrol level must be 0, 1 or 2, not {level}", ERR_ARG)


__all__ = [
    "Init", "Init_thread", "Finalize", "Is_initialized", "Is_finalized", "Query_thread",
    "Is_thread_main", "get_vendor", "Get_version", "Get_library_version",
    "Get_processor_name", "Get_hw_resource_info", "Wtime", "Wtick", "Pcontrol",
]
