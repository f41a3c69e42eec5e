"""klyng's API in Python: ``shoal.init(main)``, ``rank()``, ``size()``, ``send``, ``recv``, ``end``.

klyng (message passing for node.js) names a message's tag a *subject*, which
may be a string.  Here a tag is an int (0..2**31-1) or a string; strings are
hashed into tags above MPI's range on a communicator of their own, so they
never collide with integer tags or with MPI traffic of the same program.

Under a real ``mpiexec`` the same calls run on mpi4py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

ANY_SOURCE = -2
ANY_TAG = -1
_STRING_TAGS = 1 << 40

_comm: Any = None


def _world() -> Any:
    """The communicator the klyng API talks on (a private copy of COMM_WORLD)."""
    global _comm
    if _comm is None:
        from shoal.spmd.backend import use_real_mpi

        if use_real_mpi():
            from mpi4py import MPI

            _comm = MPI.COMM_WORLD.Dup()
        else:
            from shoal.spmd import world
            from shoal.spmd.comm import Intracomm

            class KlyngComm(Intracomm):
                _tag_bound = 2**63 - 1  # string subjects hash above MPI's tags

            # Every rank derives the same private context with no message.
            _comm = KlyngComm._make(tuple(range(world.world_size())),
                                    world.derive_context(0, 0, salt=0x6B6C), "klyng")
    return _comm


def _tag(tag: int | str) -> int:
    if isinstance(tag, str):
        if _real():
            # mpi4py checks tags against MPI's bound: fold into the upper half.
            digest = hashlib.blake2b(tag.encode(), digest_size=4).digest()
            return (1 << 28) | (int.from_bytes(digest, "little") & ((1 << 28) - 1))
        digest = hashlib.blake2b(tag.encode(), digest_size=8).digest()
        return _STRING_TAGS | (int.from_bytes(digest, "little") & ((1 << 62) - 1))
    if isinstance(tag, bool) or not isinstance(tag, int):
        raise TypeError(f"a tag (subject) is an int or a str, not {type(tag).__name__}")
    return tag


def _real() -> bool:
    from shoal.spmd.backend import use_real_mpi

    return use_real_mpi()


def rank() -> int:
    """This process's rank, 0..size()-1."""
    return int(_world().Get_rank())


def size() -> int:
    """How many ranks the job has."""
    return int(_world().Get_size())


_pending: list[Any] = []


def send(data: Any, to: int, tag: int | str = 0) -> None:
    """Send ``data`` (any picklable value) to rank ``to`` under ``tag``; returns at once.

    As in klyng, sending never waits for the receiver (so a rank may send to
    itself, or two ranks may send each other large values before receiving);
    :func:`end` waits until everything sent was delivered.
    """
    _pending.append(_world().isend(data, to, _tag(tag)))
    if len(_pending) > 64:
        _pending[:] = [request for request in _pending if not request.Test()]


def recv(source: int = ANY_SOURCE, tag: int | str = ANY_TAG) -> Any:
    """Receive the next message from ``source`` (any) with ``tag`` (any); return its data."""
    return _world().recv(None, source, _tag(tag) if tag != ANY_TAG else ANY_TAG)


def end() -> None:
    """Finish this rank's part: wait until queued sends are delivered."""
    from shoal.spmd.backend import use_real_mpi

    if _pending:
        type(_pending[0]).Waitall(_pending)
        _pending.clear()
    if not use_real_mpi():
        from shoal.spmd import world

        world.finalize()


def init(main: Callable[[], Any]) -> Any:
    """Run ``main`` as this rank's program, then :func:`end` (klyng's ``init``)."""
    try:
        return main()
    finally:
        end()

