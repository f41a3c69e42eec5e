"""This process's place in the job: its rank, the job's size and its engine.

The engine is made on first use from the environment ``shoal run`` sets
(``SHOAL_RANK``, ``SHOAL_SIZE`` and the shared-memory descriptors, or with
``SHOAL_TRANSPORT=tcp|hybrid`` what :mod:`shoal.transport.rendezvous` lists); a process
started alone is rank 0 of a one-rank job.  It is closed at exit (or by
``MPI.Finalize()``), after queued sends are flushed.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
from collections.abc import Callable

from shoal.errors import ConfigurationError
from shoal.spmd.engine import Engine
from shoal.transport.base import Endpoint

_engine: Engine | None = None
_making = threading.Lock()  # THREAD_MULTIPLE: two threads' first calls make one engine
_finalized = False
_initialized = False

# Called once when this process joins the job's communication (``on_init``) and once
# when it leaves it cleanly (``on_finalize``).  The rank bootstrap (a higher layer)
# registers hooks here that tell the launcher, so a rank that exits between the two
# (``os._exit``, a signal, a crash in C) is known to have left without finalizing.
on_init: list[Callable[[], None]] = []
on_finalize: list[Callable[[], None]] = []


def _read_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a whole number") from None


def world_rank() -> int:
    return _read_int("SHOAL_RANK", 0)


def world_size() -> int:
    return _read_int("SHOAL_SIZE", 1)


def engine() -> Engine:
    """The process's engine, made on first use (once, even when threads race to it)."""
    if _engine is None:
        with _making:
            if _engine is None:
                _make_engine()
    assert _engine is not None
    return _engine


def _make_engine() -> None:
    global _engine
    if _finalized:
        from shoal.spmd.constants import ERR_OTHER
        from shoal.spmd.constants import Exception as MPIException

        raise MPIException(ERR_OTHER, "MPI was finalized: no more communication is allowed")
    rank, size = world_rank(), world_size()
    if not 0 <= rank < size:
        raise ConfigurationError(f"SHOAL_RANK={rank} is outside a job of SHOAL_SIZE={size}")
    endpoint: Endpoint | None = None
    if size > 1:
        transport = os.environ.get("SHOAL_TRANSPORT", "shm")
        if transport == "shm":
            from shoal.transport.shm import ShmEndpoint

            endpoint = ShmEndpoint.from_environment(rank, size)
        else:  # tcp or hybrid: see shoal.transport.rendezvous for the environment
            from shoal.transport.hybrid import endpoint_from_environment

            endpoint = endpoint_from_environment(rank, size, transport)
    _engine = Engine(rank, size, endpoint)
    atexit.register(finalize)
    mark_initialized()


def mark_initialized() -> None:
    """This process takes part in the job's communication from now on (runs ``on_init``)."""
    global _initialized
    if _initialized:
        return
    _initialized = True
    for hook in on_init:
        hook()


def is_initialized() -> bool:
    return _engine is not None or _finalized


def is_finalized() -> bool:
    return _finalized


def finalize() -> None:
    """Flush queued sends and close the transport; later calls do nothing."""
    global _engine, _finalized
    if _engine is not None:
        current, _engine = _engine, None
        current.close()
    if not _finalized:
        _finalized = True
        if _initialized:
            for hook in on_finalize:
                hook()


def abandon() -> None:
    """The program failed: release the transport without flushing queued sends (a peer
    may be the reason they cannot go) and without reporting a clean finalize."""
    global _engine, _finalized
    _finalized = True
    if _engine is not None:
        current, _engine = _engine, None
        current.close(flush=False)


def derive_context(parent: int, serial: int, salt: int = 0) -> int:
    """The context of the ``serial``-th communicator made from ``parent``.

    Every member of the parent makes the same calls in the same order, so each
    computes the same number without talking; contexts are even (the odd
    neighbour is the same communicator's collective context).
    """
    digest = hashlib.blake2b(f"{parent}:{serial}:{salt}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 2) << 1
